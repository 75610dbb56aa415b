//! Embeds each document with the job's model and stores the vector in the Embeddings table
//! (`tenant`, `document_id`; `model`, `dimensions`, `vector` as little-endian f32 bytes).
//! A document without words fails; the rest of its chunk is written in one BatchWriteItem.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use jobs_core::JobType;
use jobs_core::aws::{batch_write, put};
use jobs_core::domain::params::{Document, EmbeddingParams};
use jobs_core::domain::record::JobRecord;
use jobs_core::worker::{ItemOutcome, ItemResult, Processor, WorkError};

use crate::embedder::{self, Titan};

pub struct Embeddings {
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    titan: Titan,
}

/// The stored form of a vector: 4 bytes per dimension, little-endian.
pub fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl Embeddings {
    pub fn new(dynamo: aws_sdk_dynamodb::Client, table: String, titan: Titan) -> Embeddings {
        Embeddings {
            dynamo,
            table,
            titan,
        }
    }

    async fn embed(&self, model: &str, text: &str) -> Result<Option<Vec<f32>>, WorkError> {
        match model {
            "amazon.titan-embed-text-v2" => self.titan.embed(text).await.map(Some),
            _ => Ok(embedder::hashing_v1(text)),
        }
    }

    async fn store(
        &self,
        job: &JobRecord,
        model: &str,
        rows: &[(&Document, Vec<f32>)],
    ) -> Result<(), WorkError> {
        let s = |v: &str| AttributeValue::S(v.to_string());
        let requests = rows
            .iter()
            .filter_map(|(doc, vector)| {
                put(HashMap::from([
                    ("tenant".to_string(), s(&job.tenant)),
                    ("document_id".to_string(), s(&doc.id)),
                    ("model".to_string(), s(model)),
                    (
                        "dimensions".to_string(),
                        AttributeValue::N(vector.len().to_string()),
                    ),
                    (
                        "vector".to_string(),
                        AttributeValue::B(vector_bytes(vector).into()),
                    ),
                    ("job_id".to_string(), s(&job.id)),
                ]))
            })
            .collect();
        batch_write(&self.dynamo, &self.table, requests).await
    }
}

impl Processor for Embeddings {
    const JOB_TYPE: JobType = JobType::AiTextEmbedding;
    type Params = EmbeddingParams;
    type Item = Document;

    async fn items(
        &self,
        _job: &JobRecord,
        params: &EmbeddingParams,
    ) -> Result<Vec<Document>, WorkError> {
        Ok(params.documents.clone())
    }

    fn label(doc: &Document) -> String {
        doc.id.clone()
    }

    async fn process(
        &self,
        job: &JobRecord,
        params: &EmbeddingParams,
        docs: &[Document],
    ) -> Vec<ItemResult> {
        let mut results = Vec::with_capacity(docs.len());
        let mut rows = Vec::with_capacity(docs.len());
        for doc in docs {
            let embedded = self.embed(&params.model, &doc.text).await;
            match embedded.and_then(|v| {
                v.ok_or_else(|| WorkError::Rejected("text has no words to embed".into()))
            }) {
                Ok(vector) => {
                    rows.push((doc, vector));
                    results.push(Ok(ItemOutcome::Succeeded));
                }
                Err(err) => results.push(ItemOutcome::of(Err::<(), _>(err))),
            }
        }
        // The embedded documents succeed only once their vectors are stored.
        if let Err(err) = self.store(job, &params.model, &rows).await {
            for result in results
                .iter_mut()
                .filter(|r| matches!(r, Ok(ItemOutcome::Succeeded)))
            {
                *result = Err(err.clone());
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn vectors_are_stored_as_little_endian_f32() {
        assert_eq!(
            super::vector_bytes(&[1.0, -2.0]),
            vec![0, 0, 128, 63, 0, 0, 0, 192]
        );
    }
}
