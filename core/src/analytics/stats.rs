//! Small statistics used by the clinical metrics.

/// Arithmetic mean; `None` for no values.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

/// Sample standard deviation (n − 1), as Tidepool and cgmpy compute it (clinical-reference.md
/// leaves SD *open*; the sample SD is the unbiased choice for a sample of a person's glucose).
/// `None` below two values.
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// Percentile `p` (0–100) of sorted values by linear interpolation between closest ranks
/// (Hyndman & Fan type 7, the default of R and NumPy).
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        let xs = [4.0, 6.0, 8.0, 10.0];
        assert_eq!(mean(&xs), Some(7.0));
        // Σ(x−7)² = 9+1+1+9 = 20; 20/3 = 6.667; √ = 2.5820
        assert!((sample_sd(&xs).unwrap() - (20.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(sample_sd(&[5.0]), None);
        assert_eq!(mean(&[]), None);
        // type 7: h = 3 × 0.25 = 0.75 → 4 + 0.75 × 2 = 5.5
        assert_eq!(percentile_sorted(&xs, 25.0), Some(5.5));
        assert_eq!(percentile_sorted(&xs, 50.0), Some(7.0));
        assert_eq!(percentile_sorted(&xs, 0.0), Some(4.0));
        assert_eq!(percentile_sorted(&xs, 100.0), Some(10.0));
        assert_eq!(percentile_sorted(&[3.0], 95.0), Some(3.0));
    }
}
