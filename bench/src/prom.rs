//! Reading Prometheus/OpenMetrics text (the agent's `/metrics`).

use std::collections::HashMap;

/// Samples by metric name (labels dropped, values of the same name summed), e.g.
/// `hindsight_events_in_total`.
#[derive(Debug, Clone, Default)]
pub struct Metrics(HashMap<String, f64>);

impl Metrics {
    /// Parses exposition text; lines it does not understand are skipped.
    pub fn parse(text: &str) -> Self {
        let mut sums = HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (name_part, rest) = match line.find('{') {
                Some(brace) => match line[brace..].find('}') {
                    Some(end) => (&line[..brace], &line[brace + end + 1..]),
                    None => continue,
                },
                None => match line.split_once(' ') {
                    Some((name, rest)) => (name, rest),
                    None => continue,
                },
            };
            if let Some(value) = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
            {
                *sums.entry(name_part.to_owned()).or_insert(0.0) += value;
            }
        }
        Metrics(sums)
    }

    /// The summed value of `name`, or 0 when absent.
    pub fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }

    /// Whether `name` was exposed at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The value of one labelled series, e.g. `("hindsight_fingers_crossed_emitted_total",
    /// "reason", "sampled")`, read from the raw text.
    pub fn labelled(text: &str, name: &str, label: &str, value: &str) -> f64 {
        let wanted = format!("{label}=\"{value}\"");
        text.lines()
            .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
            .filter(|line| line.contains(&wanted))
            .filter_map(|line| line.rsplit_once('}'))
            .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_series_and_skips_comments() {
        let text =
            "# TYPE x counter\nx_total{reason=\"a\"} 2\nx_total{reason=\"b\"} 3\ny 1.5\n# EOF\n";
        let metrics = Metrics::parse(text);
        assert_eq!(metrics.get("x_total"), 5.0);
        assert_eq!(metrics.get("y"), 1.5);
        assert_eq!(metrics.get("z"), 0.0);
        assert_eq!(Metrics::labelled(text, "x_total", "reason", "b"), 3.0);
    }
}
