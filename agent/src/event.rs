//! The event a source hands to the pipeline.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use hindsight_correlation::ecs::Field;
use hindsight_correlation::json::json_string;
use hindsight_exporters::ack::Ack;

/// Which standard stream a container line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The lower-case name used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// [`Stream::as_str`] as a JSON string.
    pub fn as_json(self) -> &'static str {
        match self {
            Stream::Stdout => "\"stdout\"",
            Stream::Stderr => "\"stderr\"",
        }
    }
}

/// Kubernetes identity derived from a log file's path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesOrigin {
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod UID, known from `/var/log/pods/` paths.
    pub pod_uid: Option<String>,
    /// Container name.
    pub container_name: String,
    /// Container id, known from `/var/log/containers/` paths.
    pub container_id: Option<String>,
}

/// Where a record came from; shared by every record of one file. Made once per file by
/// [`Origin::new`] and not changed afterwards: the values records get are rendered there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The path the file was discovered under.
    pub path: PathBuf,
    /// Kubernetes identity, when the path follows the kubelet's layout.
    pub kubernetes: Option<KubernetesOrigin>,
    /// The fields this origin adds to every record (`log.file.path`, `kubernetes.*`),
    /// each value a JSON string quoted and escaped once for all of them.
    fields_json: Vec<(Field, Box<str>)>,
}

impl Origin {
    /// The origin of a file at `path`.
    pub fn new(path: PathBuf, kubernetes: Option<KubernetesOrigin>) -> Self {
        let path_text = path.to_string_lossy();
        let mut fields = vec![(Field::LogFilePath, &*path_text)];
        if let Some(kubernetes) = &kubernetes {
            fields.push((Field::KubernetesNamespace, &kubernetes.namespace));
            fields.push((Field::KubernetesPodName, &kubernetes.pod_name));
            if let Some(uid) = &kubernetes.pod_uid {
                fields.push((Field::KubernetesPodUid, uid));
            }
            fields.push((Field::KubernetesContainerName, &kubernetes.container_name));
            if let Some(id) = &kubernetes.container_id {
                fields.push((Field::KubernetesContainerId, id));
            }
        }
        let fields_json = fields
            .into_iter()
            .map(|(field, text)| (field, json_string(text).into_boxed_str()))
            .collect();
        Origin {
            path,
            kubernetes,
            fields_json,
        }
    }

    /// The fields this origin adds to each of its records, values as JSON strings.
    pub fn fields_json(&self) -> impl Iterator<Item = (Field, &str)> {
        self.fields_json
            .iter()
            .map(|(field, json)| (*field, json.as_ref()))
    }
}

/// Why a line was changed on its way in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineFlags {
    /// The line was longer than `max_line_bytes` and was cut.
    pub truncated: bool,
}

/// One log line read by a source, with its framing (CRI/Docker) already removed.
#[derive(Debug)]
pub struct LogEvent {
    /// The application's own line (usually a JSON object), without the trailing newline.
    /// May be invalid UTF-8; the record builder replaces invalid sequences.
    pub line: Bytes,
    /// The time the runtime stamped on the line (CRI/Docker), as RFC 3339 text.
    pub runtime_time: Option<Bytes>,
    /// stdout or stderr, when the framing says.
    pub stream: Option<Stream>,
    /// The file the line came from.
    pub origin: Arc<Origin>,
    /// What was done to the line on the way in.
    pub flags: LineFlags,
    /// Settled once the line is delivered or deliberately dropped.
    pub ack: Ack,
}
