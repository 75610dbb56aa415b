//! Query strings, as every listing and report reads them: each parameter at most once, and
//! only the ones the operation takes; a `400` names the parameter.

use jobs_core::error::ApiError;

/// Most characters of an unknown parameter's name echoed in the error.
const MAX_ECHOED_NAME: usize = 64;

/// `params` as (name, value) pairs, once each checked against `known`: an unknown name is
/// `400 unknown query parameter`, a repeated one `400 given more than once`, each naming
/// the parameter (`field`).
pub fn checked<'a>(
    params: &'a [(String, String)],
    known: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, ApiError> {
    let mut seen = std::collections::HashSet::new();
    let mut pairs = Vec::with_capacity(params.len());
    for (name, value) in params {
        if !known.contains(&name.as_str()) {
            return Err(ApiError::bad_param(
                name.chars().take(MAX_ECHOED_NAME).collect::<String>(),
                "unknown query parameter",
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(ApiError::bad_param(name.as_str(), "given more than once"));
        }
        pairs.push((name.as_str(), value.as_str()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let known = ["from", "to"];
        assert_eq!(
            checked(&params(&[("from", "a"), ("to", "b")]), &known).unwrap(),
            vec![("from", "a"), ("to", "b")]
        );
        let unknown = checked(&params(&[("colour", "red")]), &known).unwrap_err();
        assert_eq!(
            (
                unknown.status(),
                unknown.field.as_deref(),
                unknown.message.as_str()
            ),
            (400, Some("colour"), "unknown query parameter")
        );
        let twice = checked(&params(&[("from", "a"), ("from", "b")]), &known).unwrap_err();
        assert_eq!(
            (twice.field.as_deref(), twice.message.as_str()),
            (Some("from"), "given more than once")
        );
        let long = "x".repeat(300);
        assert_eq!(
            checked(&params(&[(&long, "1")]), &known)
                .unwrap_err()
                .field
                .map(|f| f.len()),
            Some(64)
        );
    }
}
