//! Generates the API types, the api-server's and the kubelet's gRPC services from `proto/`.
//!
//! The object types (package `navarch.api.v1`) get serde derives computed from the proto descriptors: every
//! field is renamed to its proto name (which is Kubernetes' JSON name), omitted from output when empty,
//! and `null` in a manifest reads as the empty value. Unknown fields are rejected (`deny_unknown_fields`).

use std::path::PathBuf;
use std::process::Command;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

const TYPES_PACKAGE: &str = "navarch.api.v1";
/// Messages whose serde is hand-written in `src/serde_support.rs`.
const CUSTOM_SERDE: &[&str] = &["Quantity", "IntOrString"];
/// Permission-bit fields, which manifests often write in octal (`defaultMode: 0644`).
const FILE_MODE_FIELDS: &[&str] = &["defaultMode", "mode"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../proto");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["navarch/api/v1", "navarch/apiserver/v1", "navarch/kubelet/v1"] {
        let mut in_dir: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("reading {}: {e}", root.join(dir).display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "proto"))
            .collect();
        in_dir.sort();
        files.extend(in_dir);
    }
    println!("cargo:rerun-if-changed={}", root.display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let fds_path = out.join("navarch.fds");
    let protoc = std::env::var("PROTOC").unwrap_or_else(|_| "protoc".into());
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg("-o")
        .arg(&fds_path)
        .arg("-I")
        .arg(&root)
        .args(&files)
        .status()
        .unwrap_or_else(|e| panic!("running {protoc} (install protobuf-compiler): {e}"));
    assert!(status.success(), "protoc failed");
    let fds = FileDescriptorSet::decode(std::fs::read(&fds_path).unwrap().as_slice()).unwrap();

    let mut config = prost_build::Config::new();
    config.btree_map(["."]);
    for file in &fds.file {
        if file.package() != TYPES_PACKAGE {
            continue;
        }
        for msg in &file.message_type {
            annotate(&mut config, &format!(".{TYPES_PACKAGE}"), msg);
        }
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(fds, config)
        .expect("generating code");
}

fn annotate(config: &mut prost_build::Config, parent: &str, msg: &DescriptorProto) {
    let full = format!("{parent}.{}", msg.name());
    if msg.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    for nested in &msg.nested_type {
        annotate(config, &full, nested);
    }
    if CUSTOM_SERDE.contains(&msg.name()) {
        return;
    }
    config.type_attribute(
        &full,
        "#[derive(::serde::Serialize, ::serde::Deserialize)] #[serde(deny_unknown_fields, default)]",
    );
    for field in &msg.field {
        let name = field.name();
        let is_map = field.label() == Label::Repeated
            && field.r#type() == Type::Message
            && msg.nested_type.iter().any(|n| {
                n.options.as_ref().is_some_and(|o| o.map_entry())
                    && field.type_name().ends_with(&format!(".{}", n.name()))
            });
        let (skip, optional) = if is_map {
            ("::std::collections::BTreeMap::is_empty", false)
        } else if field.label() == Label::Repeated {
            ("::std::vec::Vec::is_empty", false)
        } else if field.proto3_optional() || field.r#type() == Type::Message {
            ("::std::option::Option::is_none", true)
        } else {
            ("crate::serde_support::is_default", false)
        };
        let mut attr = format!("#[serde(rename = \"{name}\", skip_serializing_if = \"{skip}\")]");
        if FILE_MODE_FIELDS.contains(&name) && optional {
            // YAML 1.1 (Kubernetes' YAML) reads `0644` as octal; our YAML 1.2 parser yields the text.
            attr.push_str(" #[serde(default, deserialize_with = \"crate::serde_support::file_mode\")]");
        } else if !optional {
            attr.push_str(" #[serde(deserialize_with = \"crate::serde_support::null_as_default\")]");
        }
        config.field_attribute(format!("{full}.{name}"), attr);
    }
}
