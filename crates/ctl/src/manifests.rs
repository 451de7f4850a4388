//! Reading `-f` arguments (files, directories, `-` for stdin) into objects, all or nothing: if any
//! document of any file is malformed, every problem is reported and nothing is sent.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use navarch_api::Object;
use navarch_api::manifest;

/// An object read from a manifest, with the file it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub object: Object,
    pub source: String,
}

/// Every manifest problem found; displayed one per line.
#[derive(Debug)]
pub struct ManifestErrors(pub Vec<String>);

impl std::fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0.join("\nerror: "))
    }
}

impl std::error::Error for ManifestErrors {}

const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// The files named by `-f` arguments: directories are expanded to their `.yaml`/`.yml`/`.json` files
/// (recursively with `-R`), sorted by name.
fn expand(args: &[String], recursive: bool) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    for arg in args {
        if arg == "-" {
            files.push(arg.clone());
            continue;
        }
        let path = Path::new(arg);
        let meta = std::fs::metadata(path).with_context(|| format!("the path {arg:?} does not exist"))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, recursive, &mut found)?;
            found.sort();
            files.extend(found.into_iter().map(|p| p.display().to_string()));
        } else {
            files.push(arg.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if recursive {
                walk(&path, recursive, out)?;
            }
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e)) {
            out.push(path);
        }
    }
    Ok(())
}

fn read_text(file: &str) -> anyhow::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))
    }
}

/// Reads and checks every manifest. Errors: a `ManifestErrors` listing every bad document, or an I/O
/// error.
pub fn read(args: &[String], recursive: bool) -> anyhow::Result<Vec<Manifest>> {
    if args.is_empty() {
        bail!("must specify one of -f and -k");
    }
    if args.iter().filter(|a| *a == "-").count() > 1 {
        bail!("standard input (-) can be given only once");
    }
    let files = expand(args, recursive)?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for file in &files {
        let text = read_text(file)?;
        match manifest::parse(&text, file) {
            Ok(objects) => {
                out.extend(objects.into_iter().map(|object| Manifest { object, source: file.clone() }))
            }
            Err(errs) => errors.extend(errs.iter().map(ToString::to_string)),
        }
    }
    if !errors.is_empty() {
        return Err(ManifestErrors(errors).into());
    }
    if out.is_empty() {
        bail!("no objects passed to apply");
    }
    Ok(out)
}

/// Puts every namespaced object in `namespace` unless its manifest names one. A manifest namespace
/// that differs from an explicit `-n` is an error, as in kubectl. Cluster-scoped objects lose any
/// namespace.
pub fn set_namespaces(
    manifests: &mut [Manifest],
    namespace: &str,
    explicit: bool,
) -> Result<(), ManifestErrors> {
    let mut errors = Vec::new();
    for m in manifests.iter_mut() {
        let namespaced = m.object.info().namespaced;
        let meta = m.object.meta_mut();
        if !namespaced {
            meta.namespace.clear();
        } else if meta.namespace.is_empty() {
            meta.namespace = namespace.to_string();
        } else if explicit && meta.namespace != namespace {
            let msg = format!(
                "the namespace from the provided object {:?} does not match the namespace {namespace:?}. You must pass '--namespace={}' to perform this operation.",
                meta.namespace, meta.namespace
            );
            if !errors.contains(&msg) {
                errors.push(msg);
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ManifestErrors(errors)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_default_and_conflict() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: other}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n, namespace: x}\n";
        let objs = manifest::parse(text, "f").unwrap();
        let mut ms: Vec<Manifest> =
            objs.into_iter().map(|object| Manifest { object, source: "f".into() }).collect();
        let mut implicit = ms.clone();
        set_namespaces(&mut implicit, "default", false).unwrap();
        let nss: Vec<&str> = implicit.iter().map(|m| m.object.meta().namespace.as_str()).collect();
        assert_eq!(nss, ["default", "other", ""]);
        let err = set_namespaces(&mut ms, "team", true).unwrap_err().to_string();
        assert!(
            err.contains(
                "namespace from the provided object \"other\" does not match the namespace \"team\""
            ),
            "{err}"
        );
    }

    #[test]
    fn directory_expansion() {
        let dir = std::env::temp_dir().join(format!("navctl-manifests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let cm = |n: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\n");
        std::fs::write(dir.join("b.yaml"), cm("b")).unwrap();
        std::fs::write(
            dir.join("a.json"),
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        std::fs::write(dir.join("sub/c.yml"), cm("c")).unwrap();
        let arg = vec![dir.display().to_string()];
        let names = |ms: Vec<Manifest>| ms.iter().map(|m| m.object.meta().name.clone()).collect::<Vec<_>>();
        assert_eq!(names(read(&arg, false).unwrap()), ["a", "b"]);
        assert_eq!(names(read(&arg, true).unwrap()), ["a", "b", "c"]);

        std::fs::write(
            dir.join("c.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nbogus: 1\n",
        )
        .unwrap();
        let err = read(&arg, false).unwrap_err();
        let errs = err.downcast_ref::<ManifestErrors>().expect("manifest errors");
        assert_eq!(errs.0.len(), 1);
        assert!(
            errs.0[0].contains("c.yaml: document 1 (ConfigMap x): bogus: unknown field"),
            "{}",
            errs.0[0]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
