//! A function's configuration, read from the environment the template sets.

/// The value of the environment variable `name`, or an error that names it.
pub fn required(name: &str) -> Result<String, lambda_runtime::Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}
