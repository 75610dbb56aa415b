use aws_sdk_s3::primitives::ByteStream;

use crate::error::StoreError;
use crate::ports::InputStore;

pub struct S3InputStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3InputStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3InputStore {
        S3InputStore { client, bucket: bucket.into() }
    }
}

impl InputStore for S3InputStore {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StoreError::aws("s3:PutObject", e))?;
        Ok(())
    }
}
