//! Embedders, chosen by the job's `model`.
//!
//! `hashing-v1` is a deterministic feature-hashing embedder that needs no model and no
//! network: the text is lower-cased and split into runs of letters and digits; each word
//! (weight 1) and each pair of adjacent words (weight 0.5) is hashed with 64-bit FNV-1a;
//! the hash modulo 384 picks a dimension and its top bit the sign; the vector is then
//! scaled to unit length. Similar wording gives similar vectors; it is no semantic model.
//!
//! `amazon.titan-embed-text-v2` calls Amazon Bedrock (`InvokeModel`, 1,024 dimensions,
//! normalised) and is for AWS; LocalStack's free tier has no Bedrock.

use jobs_core::aws::LazyClient;
use jobs_core::worker::WorkError;
use serde::Deserialize;

pub const HASHING_DIMENSIONS: usize = 384;
pub const TITAN_MODEL_ID: &str = "amazon.titan-embed-text-v2:0";
pub const TITAN_DIMENSIONS: usize = 1024;

fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash ^= u64::from(b' ');
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The `hashing-v1` embedding of a text, or None when it has no words.
pub fn hashing_v1(text: &str) -> Option<Vec<f32>> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut vector = vec![0f32; HASHING_DIMENSIONS];
    let mut add = |parts: &[&str], weight: f32| {
        let hash = fnv1a(parts);
        let index = (hash % HASHING_DIMENSIONS as u64) as usize;
        vector[index] += if hash >> 63 == 1 { -weight } else { weight };
    };
    for (i, word) in words.iter().enumerate() {
        add(&[word], 1.0);
        if let Some(next) = words.get(i + 1) {
            add(&[word, next], 0.5);
        }
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm == 0.0 {
        return None;
    }
    Some(vector.into_iter().map(|v| v / norm).collect())
}

/// Amazon Titan Text Embeddings v2 through Bedrock. Its client is built on the first Titan
/// document: a container that only embeds with `hashing-v1` never pays for it.
pub struct Titan {
    bedrock: LazyClient<aws_sdk_bedrockruntime::Client>,
}

#[derive(Deserialize)]
struct TitanResponse {
    embedding: Vec<f32>,
}

pub fn titan_request(text: &str) -> Vec<u8> {
    serde_json::json!({"inputText": text, "dimensions": TITAN_DIMENSIONS, "normalize": true})
        .to_string()
        .into_bytes()
}

pub fn titan_embedding(body: &[u8]) -> Result<Vec<f32>, WorkError> {
    let response: TitanResponse = serde_json::from_slice(body)
        .map_err(|e| WorkError::Rejected(format!("unreadable Bedrock response: {e}")))?;
    if response.embedding.len() != TITAN_DIMENSIONS {
        return Err(WorkError::Rejected(format!(
            "Bedrock returned {} dimensions",
            response.embedding.len()
        )));
    }
    Ok(response.embedding)
}

impl Titan {
    pub fn new(bedrock: LazyClient<aws_sdk_bedrockruntime::Client>) -> Titan {
        Titan { bedrock }
    }

    pub async fn embed(&self, text: &str) -> Result<Vec<f32>, WorkError> {
        let out = self
            .bedrock
            .get()
            .invoke_model()
            .model_id(TITAN_MODEL_ID)
            .content_type("application/json")
            .accept("application/json")
            .body(aws_sdk_bedrockruntime::primitives::Blob::new(
                titan_request(text),
            ))
            .send()
            .await?;
        titan_embedding(out.body().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn hashing_embeddings_are_unit_length_deterministic_and_similar_for_similar_text() {
        let a = hashing_v1("Reset my password, please").unwrap();
        assert_eq!(a.len(), HASHING_DIMENSIONS);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5, "unit norm");
        assert_eq!(
            a,
            hashing_v1("reset MY password please!").unwrap(),
            "case and punctuation do not matter"
        );
        let near = hashing_v1("please reset my password").unwrap();
        let far = hashing_v1("quarterly revenue grew in the northern region").unwrap();
        assert!(cosine(&a, &near) > cosine(&a, &far) + 0.3);
        assert_eq!(hashing_v1(" ... !!! "), None);
        assert!(
            hashing_v1("日本語のテキスト").is_some(),
            "non-Latin words count"
        );
    }

    #[test]
    fn titan_request_and_recorded_response() {
        let request: serde_json::Value = serde_json::from_slice(&titan_request("hello")).unwrap();
        assert_eq!(
            request,
            serde_json::json!({"inputText": "hello", "dimensions": 1024, "normalize": true})
        );
        // Shape of a recorded InvokeModel response (values shortened to a repeating pattern).
        let values: Vec<f32> = (0..TITAN_DIMENSIONS)
            .map(|i| ((i % 7) as f32 - 3.0) / 100.0)
            .collect();
        let recorded = serde_json::json!({"embedding": values, "inputTextTokenCount": 2});
        assert_eq!(
            titan_embedding(recorded.to_string().as_bytes()).unwrap(),
            values
        );
        let short = serde_json::json!({"embedding": [0.1, 0.2], "inputTextTokenCount": 2});
        assert!(matches!(
            titan_embedding(short.to_string().as_bytes()),
            Err(WorkError::Rejected(_))
        ));
        assert!(matches!(
            titan_embedding(b"<html>"),
            Err(WorkError::Rejected(_))
        ));
    }
}
