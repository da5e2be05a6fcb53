//! The bounded `route` label: a request path mapped to one of the configured patterns.
//!
//! Paths are unbounded (ids, slugs, garbage from scanners); a metric label must not be.
//! Only the patterns written in the configuration ever become label values, plus `other`.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

use super::config::MAX_ROUTE_LABELS;

/// The label of paths that match no pattern.
pub const OTHER: &str = "other";

/// A route label value: one of the configured patterns, or [`OTHER`]. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteLabel(Arc<str>);

impl RouteLabel {
    /// The label's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for [`OTHER`].
    pub fn is_other(&self) -> bool {
        &*self.0 == OTHER
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Any,
}

#[derive(Debug, Clone)]
struct Route {
    segments: Vec<Segment>,
    label: RouteLabel,
}

/// The configured patterns, matched by whole path segments from the start.
#[derive(Debug, Clone)]
pub struct RouteTable {
    /// Longest first; among equals, in configuration order.
    routes: Vec<Route>,
    other: RouteLabel,
}

impl RouteTable {
    /// Checks the patterns; every problem is reported.
    pub fn new(patterns: &[String]) -> Result<RouteTable, Vec<String>> {
        let mut errors = Vec::new();
        if patterns.len() > MAX_ROUTE_LABELS {
            errors.push(format!(
                "{} patterns; at most {MAX_ROUTE_LABELS} are allowed",
                patterns.len()
            ));
        }
        let mut routes: Vec<Route> = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            match parse_pattern(pattern) {
                Ok(segments) => {
                    if routes.iter().any(|route| route.segments == segments) {
                        errors.push(format!("`{pattern}` is listed twice"));
                    }
                    routes.push(Route {
                        segments,
                        label: RouteLabel(Arc::from(pattern.as_str())),
                    });
                }
                Err(why) => errors.push(format!("`{pattern}`: {why}")),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Stable: ties keep the configuration order.
        routes.sort_by_key(|route| std::cmp::Reverse(route.segments.len()));
        Ok(RouteTable {
            routes,
            other: RouteLabel(Arc::from(OTHER)),
        })
    }

    /// The label for `path` (a request path, without the query).
    pub fn label(&self, path: &str) -> &RouteLabel {
        self.routes
            .iter()
            .find(|route| matches(&route.segments, path))
            .map_or(&self.other, |route| &route.label)
    }
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, &'static str> {
    if pattern == OTHER {
        return Err("`other` is the label of unmatched paths");
    }
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err("must start with `/`");
    };
    if pattern.contains(['?', '#']) || pattern.bytes().any(|byte| !byte.is_ascii_graphic()) {
        return Err("must be a path: visible ASCII, no query");
    }
    let mut segments = Vec::new();
    for segment in rest.split('/').filter(|segment| !segment.is_empty()) {
        if segment.starts_with('{') && segment.ends_with('}') && segment.len() > 2 {
            segments.push(Segment::Any);
        } else if segment.contains(['{', '}']) {
            return Err("`{name}` must be a whole segment");
        } else {
            segments.push(Segment::Literal(segment.into()));
        }
    }
    Ok(segments)
}

/// True when `segments` match the first segments of `path`. Empty segments (`//`) are
/// skipped on both sides, as the patterns' are.
fn matches(segments: &[Segment], path: &str) -> bool {
    let mut parts = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .filter(|part| !part.is_empty());
    segments
        .iter()
        .all(|segment| match (segment, parts.next()) {
            (_, None) => false,
            (Segment::Any, Some(_)) => true,
            (Segment::Literal(literal), Some(part)) => **literal == *part,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(patterns: &[&str]) -> RouteTable {
        RouteTable::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn longest_pattern_wins_by_whole_segments() {
        let routes = table(&[
            "/api",
            "/api/users/{id}",
            "/api/users/{id}/orders",
            "/healthz",
        ]);
        assert_eq!(routes.label("/api/users/7").as_str(), "/api/users/{id}");
        assert_eq!(
            routes.label("/api/users/7/orders/9").as_str(),
            "/api/users/{id}/orders"
        );
        assert_eq!(routes.label("/api/users").as_str(), "/api");
        assert_eq!(routes.label("/api").as_str(), "/api");
        assert_eq!(routes.label("/apis").as_str(), OTHER);
        assert_eq!(routes.label("/healthz").as_str(), "/healthz");
        assert_eq!(routes.label("/").as_str(), OTHER);
        assert!(routes.label("/nope").is_other());
    }

    #[test]
    fn root_pattern_catches_everything_else() {
        let routes = table(&["/", "/a"]);
        assert_eq!(routes.label("/a/b").as_str(), "/a");
        assert_eq!(routes.label("/zzz").as_str(), "/");
    }

    #[test]
    fn ties_keep_configuration_order() {
        let routes = table(&["/{tenant}/x", "/a/{y}"]);
        assert_eq!(routes.label("/a/x").as_str(), "/{tenant}/x");
    }

    #[test]
    fn bad_patterns_are_all_reported() {
        let errors = RouteTable::new(&[
            "api".to_owned(),
            "/a/{b".to_owned(),
            "/q?x=1".to_owned(),
            "/ok".to_owned(),
            "/ok/".to_owned(),
            OTHER.to_owned(),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        let too_many: Vec<String> = (0..=MAX_ROUTE_LABELS).map(|i| format!("/r{i}")).collect();
        assert!(RouteTable::new(&too_many).unwrap_err()[0].contains("at most"));
    }
}
