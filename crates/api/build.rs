//! Generates the API types, the api-server's and the kubelet's gRPC services from `proto/`.
//!
//! The object types (package `navarch.api.v1`) get serde derives computed from the proto descriptors: every
//! field is renamed to its proto name (which is Kubernetes' JSON name), omitted from output when empty,
//! and `null` in a manifest reads as the empty value. Unknown fields are rejected (`deny_unknown_fields`).
//!
//! It also writes `navarch_schema.rs`: every message of `navarch.api.v1` with its fields and the proto
//! comments, read at run time through `navarch_api::schema` (OpenAPI, patch and defaulting code).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};

const TYPES_PACKAGE: &str = "navarch.api.v1";
/// Messages whose serde is hand-written in `src/serde_support.rs`.
const CUSTOM_SERDE: &[&str] = &["Quantity", "IntOrString", "FieldsV1", "RawExtension", "ExtraValue"];
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
    println!("cargo:rerun-if-changed=src/schema_required.rs");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let fds_path = out.join("navarch.fds");
    let protoc = std::env::var("PROTOC").unwrap_or_else(|_| "protoc".into());
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg("--include_source_info")
        .arg("-o")
        .arg(&fds_path)
        .arg("-I")
        .arg(&root)
        .args(&files)
        .status()
        .unwrap_or_else(|e| panic!("running {protoc} (install protobuf-compiler): {e}"));
    assert!(status.success(), "protoc failed");
    let mut fds = FileDescriptorSet::decode(std::fs::read(&fds_path).unwrap().as_slice()).unwrap();
    write_schema(&fds, &out.join("navarch_schema.rs"));
    // The comments are for the schema only: the generated types stay as they were, without doc comments.
    for file in &mut fds.file {
        file.source_code_info = None;
    }

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

// `static REQUIRED`: Kubernetes' required fields per message, which JSON always carries.
include!("src/schema_required.rs");

fn is_required(message: &str, field: &str) -> bool {
    REQUIRED.iter().any(|(m, fields)| *m == message && fields.contains(&field))
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
        let is_map = map_entry(msg, field).is_some();
        let (skip, optional) = if is_map {
            ("::std::collections::BTreeMap::is_empty", false)
        } else if field.label() == Label::Repeated {
            ("::std::vec::Vec::is_empty", false)
        } else if field.proto3_optional() || field.r#type() == Type::Message {
            ("::std::option::Option::is_none", true)
        } else {
            ("crate::serde_support::is_default", false)
        };
        // A required field is written even when empty (`ready: false`, `restartCount: 0`, `[]`), as
        // Kubernetes' Go types without `omitempty` are: strict clients (Python's typed models) need
        // it. An absent message or pointer (`Option`) stays absent.
        let mut attr = if is_required(msg.name(), name) && !optional {
            format!("#[serde(rename = \"{name}\")]")
        } else {
            format!("#[serde(rename = \"{name}\", skip_serializing_if = \"{skip}\")]")
        };
        if FILE_MODE_FIELDS.contains(&name) && optional {
            // YAML 1.1 (Kubernetes' YAML) reads `0644` as octal; our YAML 1.2 parser yields the text.
            attr.push_str(" #[serde(default, deserialize_with = \"crate::serde_support::file_mode\")]");
        } else if !optional {
            attr.push_str(" #[serde(deserialize_with = \"crate::serde_support::null_as_default\")]");
        }
        config.field_attribute(format!("{full}.{name}"), attr);
    }
}

/// Writes the `navarch.api.v1` messages as a Rust expression of type `&[Message]` (the types are in
/// `src/schema.rs`), sorted by name.
fn write_schema(fds: &FileDescriptorSet, path: &Path) {
    let mut messages: Vec<String> = Vec::new();
    for file in fds.file.iter().filter(|f| f.package() == TYPES_PACKAGE) {
        let stem = Path::new(file.name()).file_stem().unwrap().to_str().unwrap();
        for (i, msg) in file.message_type.iter().enumerate() {
            let mut fields = String::new();
            for (j, field) in msg.field.iter().enumerate() {
                let loc = [4, i as i32, 2, j as i32];
                let (ty, repeated, map_value) = match map_entry(msg, field) {
                    Some(entry) => {
                        assert_eq!(
                            entry.field[0].r#type(),
                            Type::String,
                            "{}.{}: map keys must be strings",
                            msg.name(),
                            field.name()
                        );
                        (field_type(&entry.field[0]), false, format!("Some({})", field_type(&entry.field[1])))
                    }
                    None => (field_type(field), field.label() == Label::Repeated, "None".to_string()),
                };
                write!(
                    fields,
                    "Field {{ json_name: {:?}, ty: {ty}, repeated: {repeated}, map_value: {map_value}, optional: {}, description: {:?} }},",
                    field.name(),
                    field.proto3_optional(),
                    comment(file, &loc),
                )
                .unwrap();
            }
            messages.push(format!(
                "Message {{ name: {:?}, file: {stem:?}, description: {:?}, fields: &[{fields}] }},",
                msg.name(),
                comment(file, &[4, i as i32]),
            ));
        }
    }
    messages.sort();
    std::fs::write(path, format!("&[\n{}\n]\n", messages.join("\n"))).unwrap();
}

/// The nested map-entry message a `map<k, v>` field stands for.
fn map_entry<'a>(msg: &'a DescriptorProto, field: &FieldDescriptorProto) -> Option<&'a DescriptorProto> {
    if field.label() != Label::Repeated || field.r#type() != Type::Message {
        return None;
    }
    msg.nested_type.iter().find(|n| {
        n.options.as_ref().is_some_and(|o| o.map_entry())
            && field.type_name().ends_with(&format!(".{}", n.name()))
    })
}

/// A `FieldType` expression for a field's element type.
fn field_type(field: &FieldDescriptorProto) -> String {
    match field.r#type() {
        Type::String => "FieldType::String".into(),
        Type::Bool => "FieldType::Bool".into(),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => "FieldType::Int32".into(),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => "FieldType::Int64".into(),
        Type::Uint32 | Type::Fixed32 => "FieldType::Uint32".into(),
        Type::Uint64 | Type::Fixed64 => "FieldType::Uint64".into(),
        Type::Double => "FieldType::Double".into(),
        Type::Float => "FieldType::Float".into(),
        Type::Bytes => "FieldType::Bytes".into(),
        Type::Message => {
            let name = field.type_name().strip_prefix(&format!(".{TYPES_PACKAGE}.")).unwrap_or_else(|| {
                panic!(
                    "{}: messages of {TYPES_PACKAGE} may only use messages of {TYPES_PACKAGE}",
                    field.name()
                )
            });
            format!("FieldType::Message({name:?})")
        }
        other => panic!("{}: {other:?} fields are not used in {TYPES_PACKAGE}", field.name()),
    }
}

/// The leading comment of the element at `path` (see `SourceCodeInfo`), without the `//`s; lines are
/// joined into paragraphs.
fn comment(file: &FileDescriptorProto, path: &[i32]) -> String {
    let Some(loc) = file.source_code_info.as_ref().and_then(|i| i.location.iter().find(|l| l.path == path))
    else {
        return String::new();
    };
    let mut paragraphs: Vec<String> = vec![String::new()];
    for line in loc.leading_comments().lines().map(str::trim) {
        let last = paragraphs.last_mut().unwrap();
        if line.is_empty() {
            if !last.is_empty() {
                paragraphs.push(String::new());
            }
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(line);
        }
    }
    paragraphs.retain(|p| !p.is_empty());
    paragraphs.join("\n\n")
}
