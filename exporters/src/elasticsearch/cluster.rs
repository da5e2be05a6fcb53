//! What the cluster is: the `GET /` answer and the versions the sink supports.

use std::fmt;

use serde::Deserialize;

/// The search engine behind the endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Elastic's Elasticsearch.
    Elasticsearch,
    /// The OpenSearch project's fork.
    OpenSearch,
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Distribution::Elasticsearch => "Elasticsearch",
            Distribution::OpenSearch => "OpenSearch",
        })
    }
}

/// What a node said about itself in answer to `GET /`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Elasticsearch or OpenSearch.
    pub distribution: Distribution,
    /// The version as reported, e.g. `8.15.0` or `2.19.1`.
    pub version: String,
    /// The major version number.
    pub major: u32,
    /// The minor version number.
    pub minor: u32,
}

#[derive(Debug, Deserialize)]
struct Root {
    version: RootVersion,
}

#[derive(Debug, Deserialize)]
struct RootVersion {
    number: String,
    #[serde(default)]
    distribution: Option<String>,
}

impl ClusterInfo {
    /// Reads the `GET /` answer.
    pub(crate) fn parse(body: &[u8]) -> Result<ClusterInfo, String> {
        let root: Root = serde_json::from_slice(body)
            .map_err(|e| format!("`GET /` did not return a cluster description: {e}"))?;
        let distribution = match root.version.distribution.as_deref() {
            Some(d) if d.eq_ignore_ascii_case("opensearch") => Distribution::OpenSearch,
            _ => Distribution::Elasticsearch,
        };
        let number = root.version.number;
        let mut parts = number.split(['.', '-']).map(str::parse::<u32>);
        let major = match parts.next() {
            Some(Ok(major)) => major,
            _ => return Err(format!("version `{number}` does not start with a number")),
        };
        let minor = match parts.next() {
            Some(Ok(minor)) => minor,
            _ => 0,
        };
        Ok(ClusterInfo {
            distribution,
            version: number,
            major,
            minor,
        })
    }

    /// Why the sink cannot work with this cluster, if it cannot. Composable index templates
    /// (`_index_template`) need Elasticsearch 7.8.
    pub(crate) fn unsupported(&self, installs_template: bool) -> Option<String> {
        match self.distribution {
            Distribution::Elasticsearch if self.major < 7 => {
                Some("Elasticsearch 7 or later is required".to_owned())
            }
            Distribution::Elasticsearch
                if installs_template && self.major == 7 && self.minor < 8 =>
            {
                Some(
                    "Elasticsearch 7.8 or later is required for composable index templates \
                     (or set template.install = false)"
                        .to_owned(),
                )
            }
            Distribution::OpenSearch if self.major < 1 => {
                Some("OpenSearch 1 or later is required".to_owned())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opensearch_root_is_recognised() {
        let body = br#"{"name":"n","cluster_name":"c","version":{"distribution":"opensearch","number":"2.19.1","build_type":"tar"},"tagline":"The OpenSearch Project: https://opensearch.org/"}"#;
        let info = ClusterInfo::parse(body).unwrap();
        assert_eq!(
            info,
            ClusterInfo {
                distribution: Distribution::OpenSearch,
                version: "2.19.1".into(),
                major: 2,
                minor: 19
            }
        );
        assert_eq!(info.unsupported(true), None);
    }

    #[test]
    fn elasticsearch_versions_are_checked() {
        let root = |v: &str| {
            format!(
                r#"{{"version":{{"number":"{v}","build_flavor":"default"}},"tagline":"You Know, for Search"}}"#
            )
        };
        let info = ClusterInfo::parse(root("8.15.0").as_bytes()).unwrap();
        assert_eq!(
            (info.distribution, info.major, info.minor),
            (Distribution::Elasticsearch, 8, 15)
        );
        assert_eq!(info.unsupported(true), None);
        let info = ClusterInfo::parse(root("9.0.0-SNAPSHOT").as_bytes()).unwrap();
        assert_eq!(info.major, 9);
        let old = ClusterInfo::parse(root("6.8.23").as_bytes()).unwrap();
        assert!(old.unsupported(false).unwrap().contains("7 or later"));
        let seven = ClusterInfo::parse(root("7.7.1").as_bytes()).unwrap();
        assert!(seven.unsupported(true).unwrap().contains("7.8"));
        assert_eq!(seven.unsupported(false), None);
        assert_eq!(
            ClusterInfo::parse(root("7.17.0").as_bytes())
                .unwrap()
                .unsupported(true),
            None
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ClusterInfo::parse(b"<html>").is_err());
        assert!(ClusterInfo::parse(br#"{"version":{"number":"x.y"}}"#).is_err());
    }
}
