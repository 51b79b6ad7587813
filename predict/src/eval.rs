//! How good predictions are, for the simulator's report.

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{preds} predictions but {labels} labels")]
    LengthMismatch { preds: usize, labels: usize },
    #[error("no predictions")]
    Empty,
    #[error("prediction {index} is not a probability (NaN or outside 0..=1)")]
    NotAProbability { index: usize },
    /// AUC compares positives with negatives; it needs both.
    #[error("labels are all {0}; AUC needs positives and negatives")]
    OneClass(bool),
}

fn check(preds: &[f64], labels: &[bool]) -> Result<(), EvalError> {
    if preds.len() != labels.len() {
        return Err(EvalError::LengthMismatch {
            preds: preds.len(),
            labels: labels.len(),
        });
    }
    if preds.is_empty() {
        return Err(EvalError::Empty);
    }
    if let Some(index) = preds.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(EvalError::NotAProbability { index });
    }
    Ok(())
}

/// Mean negative log-likelihood in nats. Predictions are clamped to
/// `[1e-15, 1 − 1e-15]`, so one confident mistake costs about 34.5, not
/// infinity.
pub fn log_loss(preds: &[f64], labels: &[bool]) -> Result<f64, EvalError> {
    check(preds, labels)?;
    let sum: f64 = preds
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            -if y { p.ln() } else { (1.0 - p).ln() }
        })
        .sum();
    Ok(sum / preds.len() as f64)
}

/// Area under the ROC curve, exactly: the Mann–Whitney U statistic over
/// ranks, tied predictions sharing their average rank (a tie between a
/// positive and a negative counts one half). O(n log n).
pub fn auc(preds: &[f64], labels: &[bool]) -> Result<f64, EvalError> {
    check(preds, labels)?;
    let positives = labels.iter().filter(|&&y| y).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(EvalError::OneClass(positives > 0));
    }
    let mut order: Vec<usize> = (0..preds.len()).collect();
    order.sort_unstable_by(|&a, &b| preds[a].total_cmp(&preds[b]));
    // Sum of the positives' 1-based ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && preds[order[j]] == preds[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        let tied_positives = order[i..j].iter().filter(|&&k| labels[k]).count();
        rank_sum += mean_rank * tied_positives as f64;
        i = j;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_ranking_is_one_and_reversed_is_zero() {
        let labels = [false, false, true, true];
        assert_eq!(auc(&[0.1, 0.2, 0.3, 0.4], &labels), Ok(1.0));
        assert_eq!(auc(&[0.4, 0.3, 0.2, 0.1], &labels), Ok(0.0));
    }

    #[test]
    fn ties_count_one_half() {
        assert_eq!(auc(&[0.5; 4], &[false, true, false, true]), Ok(0.5));
        // Positive at 0.5 ties one negative and beats the other: (1 + 0.5) / 2.
        assert_eq!(auc(&[0.2, 0.5, 0.5], &[false, false, true]), Ok(0.75));
    }

    #[test]
    fn agrees_with_counting_pairs() {
        let preds = [0.1, 0.4, 0.35, 0.8, 0.4, 0.1, 0.9, 0.35];
        let labels = [false, true, false, true, false, true, true, false];
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for (i, &yi) in labels.iter().enumerate() {
            for (j, &yj) in labels.iter().enumerate() {
                if yi && !yj {
                    pairs += 1.0;
                    if preds[i] > preds[j] {
                        wins += 1.0;
                    } else if preds[i] == preds[j] {
                        wins += 0.5;
                    }
                }
            }
        }
        let exact = auc(&preds, &labels).expect("both classes");
        assert!(
            (exact - wins / pairs).abs() < 1e-12,
            "{exact} {}",
            wins / pairs
        );
    }

    #[test]
    fn log_loss_of_a_coin_is_ln_2() {
        let ll = log_loss(&[0.5, 0.5], &[true, false]).expect("valid");
        assert!((ll - std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn a_certain_mistake_is_finite() {
        let ll = log_loss(&[0.0], &[true]).expect("valid");
        assert!(ll.is_finite() && ll > 30.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            log_loss(&[0.5], &[]),
            Err(EvalError::LengthMismatch {
                preds: 1,
                labels: 0
            })
        );
        assert_eq!(log_loss(&[], &[]), Err(EvalError::Empty));
        assert_eq!(
            log_loss(&[0.5, f64::NAN], &[true, false]),
            Err(EvalError::NotAProbability { index: 1 })
        );
        assert_eq!(
            auc(&[1.5], &[true]),
            Err(EvalError::NotAProbability { index: 0 })
        );
        assert_eq!(
            auc(&[0.5, 0.6], &[true, true]),
            Err(EvalError::OneClass(true))
        );
    }
}
