//! The images the Node reports in `status.images`, as Kubernetes' kubelet reports them: one entry per
//! image (its records in containerd grouped by target digest) with its repo digests then its repo tags
//! (at most 5 names), the 50 largest, largest first. The scheduler's ImageLocality score reads them.

use std::collections::{BTreeMap, HashMap};

use navarch_api::v1::ContainerImage;

use super::{Reference, Result, pull::content_size};
use crate::containerd::Containerd;

/// Kubernetes' `nodeStatusMaxImages` default.
pub const MAX_IMAGES: usize = 50;
/// Kubernetes' `MaxNamesPerImageInNodeStatus`.
pub const MAX_NAMES_PER_IMAGE: usize = 5;

/// One image record: its name in containerd, the target's digest, the content's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub digest: String,
    pub size: i64,
}

/// `status.images` from containerd's image records.
pub fn node_images(records: &[Record]) -> Vec<ContainerImage> {
    // digest → (size, repo digests, repo tags), each name once.
    let mut by_digest: BTreeMap<&str, (i64, Vec<String>, Vec<String>)> = BTreeMap::new();
    for r in records {
        let entry = by_digest.entry(&r.digest).or_insert((r.size, Vec::new(), Vec::new()));
        let (digests, tags) = (&mut entry.1, &mut entry.2);
        match Reference::parse(&r.name) {
            Ok(parsed) => {
                let repo_digest = format!("{}/{}@{}", parsed.registry, parsed.repository, r.digest);
                if !digests.contains(&repo_digest) {
                    digests.push(repo_digest);
                }
                if parsed.digest.is_empty() && !tags.contains(&r.name) {
                    tags.push(r.name.clone());
                }
            }
            // Not a registry reference (an image imported under another name): reported as it is.
            Err(_) => {
                if !tags.contains(&r.name) {
                    tags.push(r.name.clone());
                }
            }
        }
    }
    let mut images: Vec<ContainerImage> = by_digest
        .into_values()
        .map(|(size, mut digests, tags)| {
            digests.extend(tags);
            digests.truncate(MAX_NAMES_PER_IMAGE);
            ContainerImage { names: digests, size_bytes: size }
        })
        .collect();
    images.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then_with(|| a.names.cmp(&b.names)));
    images.truncate(MAX_IMAGES);
    images
}

/// The node's images now; `sizes` (digest → size) saves reading manifests again on the next call.
pub async fn list(ctd: &Containerd, sizes: &mut HashMap<String, i64>) -> Result<Vec<ContainerImage>> {
    let mut records = Vec::new();
    for image in ctd.list_images().await? {
        let Some(target) = image.target else { continue };
        let size = match sizes.get(&target.digest) {
            Some(s) => *s,
            None => match content_size(ctd, &target).await {
                Ok(s) => {
                    sizes.insert(target.digest.clone(), s);
                    s
                }
                // Content missing (an image being pulled): reported next time.
                Err(_) => continue,
            },
        };
        records.push(Record { name: image.name, digest: target.digest, size });
    }
    Ok(node_images(&records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, digest: &str, size: i64) -> Record {
        Record { name: name.into(), digest: digest.into(), size }
    }

    #[test]
    fn grouped_by_digest_digests_first_largest_first() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let images = node_images(&[
            rec("docker.io/library/busybox:latest", &d('a'), 2_000_000),
            rec("docker.io/library/busybox:1.36", &d('a'), 2_000_000),
            rec("docker.io/library/nginx:1.27", &d('b'), 70_000_000),
            rec(&format!("docker.io/library/redis@{}", d('c')), &d('c'), 40_000_000),
        ]);
        let names: Vec<&[String]> = images.iter().map(|i| i.names.as_slice()).collect();
        assert_eq!(
            names,
            vec![
                &[format!("docker.io/library/nginx@{}", d('b')), "docker.io/library/nginx:1.27".into()][..],
                &[format!("docker.io/library/redis@{}", d('c'))][..],
                &[
                    format!("docker.io/library/busybox@{}", d('a')),
                    "docker.io/library/busybox:latest".into(),
                    "docker.io/library/busybox:1.36".into()
                ][..],
            ]
        );
        assert_eq!(
            images.iter().map(|i| i.size_bytes).collect::<Vec<_>>(),
            vec![70_000_000, 40_000_000, 2_000_000]
        );
    }

    #[test]
    fn at_most_50_images_and_5_names() {
        let records: Vec<Record> =
            (0..60)
                .map(|i| rec(&format!("registry.local/app{i}:v1"), &format!("sha256:{i:064}"), i * 1000))
                .chain((0..7).map(|t| {
                    rec(&format!("registry.local/app59:t{t}"), &format!("sha256:{:064}", 59), 59_000)
                }))
                .collect();
        let images = node_images(&records);
        assert_eq!(images.len(), MAX_IMAGES);
        assert_eq!(images[0].size_bytes, 59_000, "the largest first");
        assert_eq!(images[49].size_bytes, 10_000, "the 10 smallest left out");
        assert_eq!(images[0].names.len(), MAX_NAMES_PER_IMAGE);
        assert_eq!(images[0].names[0], format!("registry.local/app59@sha256:{:064}", 59));
    }
}
