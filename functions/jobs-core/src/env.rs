//! A function's settings, read from the environment variables the template sets. Every
//! setting of this crate's functions is read through here.

use std::str::FromStr;

/// A setting that is missing or cannot be used; names the variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("{0} is not set")]
    Missing(String),
    #[error("{name} is not valid: {reason}")]
    Invalid { name: String, reason: String },
}

/// The value of the environment variable `name`; empty counts as missing.
pub fn required(name: &str) -> Result<String, SettingError> {
    present(name, std::env::var(name).ok())
}

/// The variable `name` parsed as `T`.
pub fn parsed<T: FromStr>(name: &str) -> Result<T, SettingError> {
    parse(name, std::env::var(name).ok())
}

/// The variable `name` parsed as `T`, or `default` when it is not set.
pub fn parsed_or<T: FromStr>(name: &str, default: T) -> Result<T, SettingError> {
    match parsed(name) {
        Err(SettingError::Missing(_)) => Ok(default),
        other => other,
    }
}

fn present(name: &str, value: Option<String>) -> Result<String, SettingError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SettingError::Missing(name.to_string()))
}

fn parse<T: FromStr>(name: &str, value: Option<String>) -> Result<T, SettingError> {
    let value = present(name, value)?;
    value.parse().map_err(|_| SettingError::Invalid {
        name: name.to_string(),
        reason: format!("cannot parse {value:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_invalid_settings_name_the_variable() {
        assert_eq!(
            parse::<u32>("MAX_RECEIVE_COUNT", Some("12".into())).unwrap(),
            12
        );
        let invalid = parse::<u32>("MAX_RECEIVE_COUNT", Some("twelve".into())).unwrap_err();
        assert_eq!(
            invalid.to_string(),
            "MAX_RECEIVE_COUNT is not valid: cannot parse \"twelve\""
        );
        assert_eq!(
            present("TABLE_NAME", Some(String::new()))
                .unwrap_err()
                .to_string(),
            "TABLE_NAME is not set"
        );
        assert!(matches!(
            parse::<u32>("RETENTION_DAYS", None),
            Err(SettingError::Missing(_))
        ));
        assert_eq!(parsed_or("JOBS_CORE_TEST_NEVER_SET", 90u32).unwrap(), 90);
    }
}
