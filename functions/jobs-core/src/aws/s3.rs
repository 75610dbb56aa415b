use aws_sdk_s3::primitives::ByteStream;

use super::LazyClient;
use crate::error::StoreError;
use aws_sdk_s3::presigning::PresigningConfig;

use crate::ports::{InputStore, ObjectHead, PresignedPut, UploadFormat};

pub struct S3InputStore {
    client: LazyClient<aws_sdk_s3::Client>,
    bucket: String,
}

impl S3InputStore {
    pub fn new(client: LazyClient<aws_sdk_s3::Client>, bucket: impl Into<String>) -> S3InputStore {
        S3InputStore {
            client,
            bucket: bucket.into(),
        }
    }
}

impl S3InputStore {
    /// A `PutObject` of `key` in the bucket.
    fn put_object(
        &self,
        key: &str,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.client.get().put_object().bucket(&self.bucket).key(key)
    }

    /// `GetObject` of `key`, of `range` (an HTTP `Range`) when given; `None` when there is
    /// no such key. A range that starts past the object's end (`416`) is an empty body.
    async fn get_object(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StoreError> {
        match self
            .client
            .get()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 416) =>
            {
                Ok(Some(
                    aws_sdk_s3::operation::get_object::GetObjectOutput::builder().build(),
                ))
            }
            Err(err) => Err(StoreError::aws("s3:GetObject", err)),
        }
    }
}

/// An object's whole body.
async fn collect(
    out: aws_sdk_s3::operation::get_object::GetObjectOutput,
) -> Result<Vec<u8>, StoreError> {
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| StoreError::aws("s3:GetObject body", e))?;
    Ok(bytes.into_bytes().to_vec())
}

impl InputStore for S3InputStore {
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StoreError> {
        match self
            .client
            .get()
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectHead {
                bytes: out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                content_type: out.content_type().map(str::to_string),
                content_encoding: out.content_encoding().map(str::to_string),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(StoreError::aws("s3:HeadObject", err)),
        }
    }

    async fn presign_put(
        &self,
        key: &str,
        format: &UploadFormat,
        expires_in: std::time::Duration,
    ) -> Result<PresignedPut, StoreError> {
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| StoreError::aws("s3:PutObject presign", e))?;
        let presigned = self
            .put_object(key)
            .if_none_match("*")
            .content_type(&format.content_type)
            .set_content_encoding(format.content_encoding.clone())
            .presigned(config)
            .await
            .map_err(|e| StoreError::aws("s3:PutObject presign", e))?;
        Ok(PresignedPut {
            method: presigned.method().to_string(),
            url: presigned.uri().to_string(),
            headers: presigned
                .headers()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        self.put_object(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StoreError::aws("s3:PutObject", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get_object(key, None).await? {
            Some(out) => collect(out).await.map(Some),
            None => Ok(None),
        }
    }

    async fn open(
        &self,
        key: &str,
        from: u64,
    ) -> Result<Option<crate::ports::ByteReader>, StoreError> {
        let range = (from > 0).then(|| format!("bytes={from}-"));
        Ok(self
            .get_object(key, range)
            .await?
            .map(|out| Box::new(out.body.into_async_read()) as crate::ports::ByteReader))
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // HTTP ranges are inclusive; an empty range is no request at all.
        let range = match end {
            Some(end) if end <= start => return Ok(Some(Vec::new())),
            Some(end) => format!("bytes={start}-{}", end - 1),
            None => format!("bytes={start}-"),
        };
        match self.get_object(key, Some(range)).await? {
            Some(out) => collect(out).await.map(Some),
            None => Ok(None),
        }
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        let result = self
            .put_object(key)
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 412) =>
            {
                Ok(false)
            }
            Err(err) => Err(StoreError::aws("s3:PutObject", err)),
        }
    }

    async fn create_multipart_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .get()
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| StoreError::aws("s3:CreateMultipartUpload", e))?;
        out.upload_id.ok_or(StoreError::Unavailable(
            "s3:CreateMultipartUpload's upload id",
        ))
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .get()
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StoreError::aws("s3:UploadPart", e))?;
        out.e_tag
            .ok_or(StoreError::Unavailable("s3:UploadPart's ETag"))
    }

    async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), StoreError> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let parts = etags
            .iter()
            .zip(1..)
            .map(|(etag, number)| {
                CompletedPart::builder()
                    .e_tag(etag)
                    .part_number(number)
                    .build()
            })
            .collect();
        self.client
            .get()
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| StoreError::aws("s3:CompleteMultipartUpload", e))?;
        Ok(())
    }

    async fn presign_get(
        &self,
        key: &str,
        filename: &str,
        expires_in: std::time::Duration,
    ) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| StoreError::aws("s3:GetObject presign", e))?;
        let presigned = self
            .client
            .get()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{filename}\""))
            .presigned(config)
            .await
            .map_err(|e| StoreError::aws("s3:GetObject presign", e))?;
        Ok(presigned.uri().to_string())
    }
}
