//! Kubernetes identity from a log file's path.
//!
//! The kubelet lays container logs out in two ways, and both are recognised from the
//! path's trailing components, so the same rules work under a test's temporary directory
//! and for rotated names (`0.log.20240101-120000`):
//!
//! - `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`
//! - `/var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log`
//!
//! Namespaces, pod names and container names are DNS labels/subdomains, so they never
//! contain `_`; that makes splitting on `_` unambiguous.

use std::path::Path;

use crate::event::{KubernetesOrigin, Origin};

/// Builds the [`Origin`] of a file discovered under `path`.
pub(crate) fn origin_for(path: &Path) -> Origin {
    Origin::new(path.to_path_buf(), kubernetes_origin(path))
}

/// Parses the Kubernetes identity out of `path`, when it follows the kubelet's layout.
pub(crate) fn kubernetes_origin(path: &Path) -> Option<KubernetesOrigin> {
    let mut tail = path.iter().rev().filter_map(|c| c.to_str());
    let file = tail.next()?;
    let parent = tail.next()?;
    if parent == "containers" {
        return containers_origin(file);
    }
    let pod_dir = tail.next()?;
    if tail.next()? != "pods" || !is_numbered_log(file) {
        return None;
    }
    pods_origin(pod_dir, parent)
}

/// `<namespace>_<pod>_<uid>` and the container directory's name.
fn pods_origin(pod_dir: &str, container: &str) -> Option<KubernetesOrigin> {
    let mut parts = pod_dir.split('_');
    let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || [namespace, pod, uid, container]
            .iter()
            .any(|s| s.is_empty())
    {
        return None;
    }
    Some(KubernetesOrigin {
        namespace: namespace.to_owned(),
        pod_name: pod.to_owned(),
        pod_uid: Some(uid.to_owned()),
        container_name: container.to_owned(),
        container_id: None,
    })
}

/// `<pod>_<namespace>_<container>-<id>.log`, possibly followed by a rotation suffix.
fn containers_origin(file: &str) -> Option<KubernetesOrigin> {
    let stem = &file[..log_suffix_start(file)?];
    let (rest, id) = stem.rsplit_once('-')?;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut parts = rest.split('_');
    let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [pod, namespace, container].iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(KubernetesOrigin {
        namespace: namespace.to_owned(),
        pod_name: pod.to_owned(),
        pod_uid: None,
        container_name: container.to_owned(),
        container_id: Some(id.to_owned()),
    })
}

/// `<digits>.log` or `<digits>.log.<rotation suffix>`.
fn is_numbered_log(file: &str) -> bool {
    match log_suffix_start(file) {
        Some(end) => end > 0 && file[..end].bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Where `.log` (at the end, or followed by `.<suffix>`) starts in a file name.
fn log_suffix_start(file: &str) -> Option<usize> {
    file.match_indices(".log")
        .map(|(i, _)| i)
        .find(|&i| matches!(file.as_bytes().get(i + 4), None | Some(b'.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pods_layout() {
        let k = kubernetes_origin(Path::new(
            "/var/log/pods/shop_cart-7d9f_5c1e2a3b-1111-2222-3333-444455556666/cart/0.log",
        ))
        .unwrap();
        assert_eq!(k.namespace, "shop");
        assert_eq!(k.pod_name, "cart-7d9f");
        assert_eq!(
            k.pod_uid.as_deref(),
            Some("5c1e2a3b-1111-2222-3333-444455556666")
        );
        assert_eq!(k.container_name, "cart");
        assert_eq!(k.container_id, None);
    }

    #[test]
    fn pods_layout_under_a_temp_dir_and_rotated() {
        for p in [
            "/tmp/x/var/log/pods/ns_pod_uid/ctr/0.log",
            "/tmp/x/var/log/pods/ns_pod_uid/ctr/12.log.20240101-120000",
            "/tmp/x/var/log/pods/ns_pod_uid/ctr/0.log.1",
        ] {
            let k = kubernetes_origin(Path::new(p)).unwrap_or_else(|| panic!("{p}"));
            assert_eq!(
                (
                    k.namespace.as_str(),
                    k.pod_name.as_str(),
                    k.container_name.as_str()
                ),
                ("ns", "pod", "ctr")
            );
            assert_eq!(k.pod_uid.as_deref(), Some("uid"));
        }
    }

    #[test]
    fn containers_layout() {
        let p = format!("/var/log/containers/cart-7d9f_shop_cart-sidecar-{ID}.log");
        let k = kubernetes_origin(Path::new(&p)).unwrap();
        assert_eq!(k.pod_name, "cart-7d9f");
        assert_eq!(k.namespace, "shop");
        assert_eq!(k.container_name, "cart-sidecar");
        assert_eq!(k.container_id.as_deref(), Some(ID));
        assert_eq!(k.pod_uid, None);
        let rotated = format!("/tmp/t/containers/p_ns_c-{ID}.log.1");
        assert_eq!(
            kubernetes_origin(Path::new(&rotated))
                .unwrap()
                .container_name,
            "c"
        );
    }

    #[test]
    fn other_paths_have_no_kubernetes_origin() {
        for p in [
            "/var/log/syslog",
            "/var/log/app/app.log",
            "/var/log/pods/not-three-parts/ctr/0.log",
            "/var/log/pods/a_b_c_d/ctr/0.log",
            "/var/log/pods/ns_pod_uid/ctr/app.log",
            "/var/log/containers/pod_ns_ctr-short.log",
            "/var/log/containers/podnsctr-0123.log",
            "/srv/ns_pod_uid/ctr/0.log",
            "0.log",
        ] {
            assert_eq!(kubernetes_origin(Path::new(p)), None, "{p}");
        }
        let bad_id = format!("/var/log/containers/p_ns_c-{}.log", &ID.replace('a', "g"));
        assert_eq!(kubernetes_origin(Path::new(&bad_id)), None);
    }

    #[test]
    fn origin_keeps_the_path() {
        let o = origin_for(Path::new("/a/b.log"));
        assert_eq!(o.path, Path::new("/a/b.log"));
        assert!(o.kubernetes.is_none());
    }
}
