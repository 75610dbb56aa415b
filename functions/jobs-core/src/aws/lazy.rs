use std::sync::OnceLock;

/// An SDK client built on its first use, then shared. Building one is part of a cold start
/// (each SDK crate parses its endpoint partition table and compiles its region regexes;
/// `make bench BENCH=init` attributes init time step by step). For clients only
/// some requests need: S3 and SQS serve only creating and planning jobs, Bedrock only
/// Titan embeddings, so a container that lists jobs or runs other chunks never builds them.
pub struct LazyClient<C> {
    config: aws_config::SdkConfig,
    build: fn(&aws_config::SdkConfig) -> C,
    client: OnceLock<C>,
}

impl<C> LazyClient<C> {
    pub fn new(
        config: &aws_config::SdkConfig,
        build: fn(&aws_config::SdkConfig) -> C,
    ) -> LazyClient<C> {
        LazyClient {
            config: config.clone(),
            build,
            client: OnceLock::new(),
        }
    }

    pub fn get(&self) -> &C {
        self.client.get_or_init(|| (self.build)(&self.config))
    }

    /// A client built already (adapter tests over a fake HTTP client).
    #[cfg(test)]
    pub fn ready(client: C) -> LazyClient<C> {
        fn never<C>(_: &aws_config::SdkConfig) -> C {
            unreachable!("a ready client is never built")
        }
        LazyClient {
            config: aws_config::SdkConfig::builder().build(),
            build: never::<C>,
            client: OnceLock::from(client),
        }
    }

    #[cfg(test)]
    fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUILDS: AtomicUsize = AtomicUsize::new(0);

    fn counted(config: &aws_config::SdkConfig) -> String {
        BUILDS.fetch_add(1, Ordering::SeqCst);
        format!("client for {:?}", config.region())
    }

    #[test]
    fn builds_once_on_first_use_with_the_config_it_was_given() {
        let config = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let lazy = LazyClient::new(&config, counted);
        assert!(!lazy.is_built());
        assert_eq!(BUILDS.load(Ordering::SeqCst), 0);
        assert_eq!(lazy.get(), "client for Some(Region(\"eu-west-1\"))");
        assert_eq!(lazy.get(), "client for Some(Region(\"eu-west-1\"))");
        assert_eq!(BUILDS.load(Ordering::SeqCst), 1);
    }
}
