//! `pow` for every binary that links this crate, so that none of them loads `libm.so.6`.
//!
//! The only libm symbol the functions import is `pow`, from `f64::powf` in the SDK's
//! adaptive-retry rate limiter (aws-smithy-runtime `client_rate_limiter.rs`), code that
//! standard retry mode never runs. Loading the library still cost every cold start
//! 0.08-0.13 ms (A/B of fresh copies, README Performance). A definition in the executable
//! wins over a shared library, and `--as-needed` then drops `libm.so.6` from the binary's
//! needed list.

/// The C `pow`, computed by the `libm` crate (a port of musl's: under 1 ulp of error).
#[unsafe(no_mangle)]
pub extern "C" fn pow(base: f64, exponent: f64) -> f64 {
    libm::pow(base, exponent)
}

#[cfg(test)]
mod tests {
    use super::pow;

    #[test]
    fn computes_powers() {
        assert_eq!(pow(2.0, 10.0), 1024.0);
        assert_eq!(pow(10.0, -2.0), 0.01);
        assert!((pow(27.0, 1.0 / 3.0) - 3.0).abs() < 1e-15);
        assert!(pow(-1.0, 0.5).is_nan());
    }
}
