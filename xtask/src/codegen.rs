//! botocore models → `crates/api/operations/src/generated.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The models, in a fixed order; paths relative to the workspace root.
const MODELS: &[&str] = &[
    "models/cloudtrail-2013-11-01.json",
    "models/cloudtrail-data-2021-08-11.json",
];

const OUTPUT: &str = "crates/api/operations/src/generated.rs";

/// OpenTrail's additions to the botocore models (see [`apply_extensions`]).
const EXTENSIONS: &str = "models/opentrail-extensions.json";

/// The key [`apply_extensions`] sets on a member it added, so the generated field
/// says it is an extension.
const EXTENSION_MARK: &str = "opentrailExtension";

/// Names the hand-written runtime and the generated fixed items use; a model
/// shape with one of these names would collide.
const RESERVED_NAMES: &[&str] = &[
    "Blob",
    "HttpBinding",
    "Operation",
    "OperationShape",
    "Service",
    "Timestamp",
    "Unit",
    "Option",
    "Vec",
    "Box",
    "String",
    "Result",
];

type Result<T> = std::result::Result<T, String>;

pub fn run(root: &Path, check: bool) -> Result<()> {
    let extensions = read_json(root, EXTENSIONS)?;
    let mut models = Vec::new();
    for rel in MODELS {
        let mut json = read_json(root, rel)?;
        apply_extensions(rel, &mut json, &extensions)?;
        models.push(Model::load(rel, &json)?);
    }
    let raw = generate(&models)?;
    let formatted = rustfmt(root, &raw)?;
    let out = root.join(OUTPUT);
    if check {
        let current = std::fs::read_to_string(&out).unwrap_or_default();
        if current != formatted {
            return Err(format!(
                "{OUTPUT} is stale: it differs from what the models generate (run: cargo xtask codegen)"
            ));
        }
        return Ok(());
    }
    let current = std::fs::read_to_string(&out).ok();
    if current.as_deref() != Some(formatted.as_str()) {
        std::fs::write(&out, &formatted).map_err(|e| format!("writing {}: {e}", out.display()))?;
        eprintln!("xtask: wrote {OUTPUT}");
    } else {
        eprintln!("xtask: {OUTPUT} is up to date");
    }
    Ok(())
}

fn read_json(root: &Path, rel: &str) -> Result<Value> {
    let path = root.join(rel);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// Merges OpenTrail's overlay ([`EXTENSIONS`]) into the botocore model `file` before
/// it is loaded. The overlay is a JSON object:
///
/// - `"models"`: an object from a model path (as in [`MODELS`]) to its additions;
/// - each addition may hold `"shapes"` — new shapes in botocore syntax, whose names the
///   model must not already define — and `"members"` — an object from an existing
///   structure shape to new members in botocore syntax (`{"shape": ...}`), which that
///   structure must not already have. An added member is always optional (the
///   structure's `required` list is left alone): clients that follow the botocore model
///   never send it, and ignore it when they receive it.
///
/// Keys starting with `_` (such as `"_documentation"`) are comments. Anything else is
/// refused, so a typo cannot silently drop an extension.
fn apply_extensions(file: &str, model: &mut Value, overlay: &Value) -> Result<()> {
    let ctx = EXTENSIONS;
    let root = overlay
        .as_object()
        .ok_or_else(|| format!("{ctx}: not a JSON object"))?;
    for key in root.keys() {
        if !key.starts_with('_') && key != "models" {
            return Err(format!("{ctx}: unknown key {key:?}"));
        }
    }
    let Some(models) = root.get("models") else {
        return Ok(());
    };
    let models = models
        .as_object()
        .ok_or_else(|| format!("{ctx}: \"models\" is not an object"))?;
    for name in models.keys() {
        if !name.starts_with('_') && !MODELS.contains(&name.as_str()) {
            return Err(format!("{ctx}: {name} is not one of the models"));
        }
    }
    let Some(additions) = models.get(file) else {
        return Ok(());
    };
    let additions = additions
        .as_object()
        .ok_or_else(|| format!("{ctx}: {file}: not an object"))?;
    for key in additions.keys() {
        if !key.starts_with('_') && key != "shapes" && key != "members" {
            return Err(format!("{ctx}: {file}: unknown key {key:?}"));
        }
    }
    let shapes = model
        .get_mut("shapes")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("{file}: no shapes"))?;
    if let Some(new_shapes) = additions.get("shapes") {
        let new_shapes = new_shapes
            .as_object()
            .ok_or_else(|| format!("{ctx}: {file}: \"shapes\" is not an object"))?;
        for (name, shape) in new_shapes {
            if name.starts_with('_') {
                continue;
            }
            if shapes.contains_key(name) {
                return Err(format!("{ctx}: shape {name} is already defined by {file}"));
            }
            shapes.insert(name.clone(), shape.clone());
        }
    }
    if let Some(new_members) = additions.get("members") {
        let new_members = new_members
            .as_object()
            .ok_or_else(|| format!("{ctx}: {file}: \"members\" is not an object"))?;
        for (shape_name, members) in new_members {
            if shape_name.starts_with('_') {
                continue;
            }
            let members = members
                .as_object()
                .ok_or_else(|| format!("{ctx}: members of {shape_name}: not an object"))?;
            let shape = shapes
                .get_mut(shape_name)
                .ok_or_else(|| format!("{ctx}: {file} has no shape {shape_name}"))?;
            if shape.get("type").and_then(Value::as_str) != Some("structure") {
                return Err(format!("{ctx}: shape {shape_name} is not a structure"));
            }
            let existing = shape
                .as_object_mut()
                .ok_or_else(|| format!("{file}: shape {shape_name} is not an object"))?
                .entry("members")
                .or_insert_with(|| Value::Object(Default::default()))
                .as_object_mut()
                .ok_or_else(|| format!("{file}: members of {shape_name}: not an object"))?;
            for (member, definition) in members {
                if member.starts_with('_') {
                    continue;
                }
                if existing.contains_key(member) {
                    return Err(format!("{ctx}: {shape_name} already has a member {member}"));
                }
                let mut definition = definition.clone();
                definition
                    .as_object_mut()
                    .ok_or_else(|| format!("{ctx}: {shape_name}.{member}: not an object"))?
                    .insert(EXTENSION_MARK.to_owned(), Value::Bool(true));
                existing.insert(member.clone(), definition);
            }
        }
    }
    Ok(())
}

fn rustfmt(root: &Path, source: &str) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("rustfmt: no stdin")?;
    let input = source.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    writer
        .join()
        .map_err(|_| "rustfmt writer panicked".to_owned())?
        .map_err(|e| format!("writing to rustfmt: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("rustfmt output: {e}"))
}

// ---------------------------------------------------------------------------
// Model

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Structure {
        members: Vec<Member>,
        exception: bool,
    },
    String {
        values: Vec<String>,
    },
    List {
        member: String,
    },
    Map {
        value: String,
    },
    Boolean,
    Integer,
    Long,
    Double,
    Timestamp,
    Blob,
}

#[derive(Debug, Clone, PartialEq)]
struct Member {
    name: String,
    shape: String,
    required: bool,
    location: Option<(String, String)>,
    /// Added by OpenTrail's overlay, not in botocore's model.
    extension: bool,
}

struct Op {
    name: String,
    method: String,
    request_uri: String,
    input: Option<String>,
    output: Option<String>,
    errors: Vec<String>,
}

struct Model {
    file: String,
    /// `CloudTrail`, `CloudTrailData`: `serviceId` without spaces.
    service: String,
    protocol: String,
    api_version: String,
    signing_name: String,
    target_prefix: Option<String>,
    shapes: BTreeMap<String, Shape>,
    ops: Vec<Op>,
}

fn str_field<'a>(v: &'a Value, key: &str, ctx: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{ctx}: missing string field {key:?}"))
}

fn shape_ref(v: &Value, key: &str, ctx: &str) -> Result<String> {
    let inner = v
        .get(key)
        .ok_or_else(|| format!("{ctx}: missing {key:?}"))?;
    Ok(str_field(inner, "shape", ctx)?.to_owned())
}

impl Model {
    fn load(file: &str, json: &Value) -> Result<Model> {
        let meta = json.get("metadata").ok_or("missing metadata")?;
        let service: String = str_field(meta, "serviceId", file)?
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let endpoint_prefix = str_field(meta, "endpointPrefix", file)?;
        let signing_name = meta
            .get("signingName")
            .and_then(Value::as_str)
            .unwrap_or(endpoint_prefix)
            .to_owned();
        let mut shapes = BTreeMap::new();
        let shape_json = json
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{file}: no shapes"))?;
        for (name, s) in shape_json {
            let ctx = format!("{file}: shape {name}");
            let shape = match str_field(s, "type", &ctx)? {
                "structure" => {
                    let required: BTreeSet<&str> = s
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let mut members = Vec::new();
                    if let Some(ms) = s.get("members").and_then(Value::as_object) {
                        for (mname, m) in ms {
                            let location = m.get("location").and_then(Value::as_str).map(|loc| {
                                let wire = m.get("locationName").and_then(Value::as_str);
                                (loc.to_owned(), wire.unwrap_or(mname).to_owned())
                            });
                            members.push(Member {
                                name: mname.clone(),
                                shape: str_field(m, "shape", &ctx)?.to_owned(),
                                required: required.contains(mname.as_str()),
                                location,
                                extension: m.get(EXTENSION_MARK).and_then(Value::as_bool)
                                    == Some(true),
                            });
                        }
                    }
                    for r in &required {
                        if !members.iter().any(|m| m.name == *r) {
                            return Err(format!("{ctx}: required member {r} is not a member"));
                        }
                    }
                    members.sort_by(|a, b| a.name.cmp(&b.name));
                    Shape::Structure {
                        members,
                        exception: s.get("exception").and_then(Value::as_bool) == Some(true),
                    }
                }
                "string" => Shape::String {
                    values: s
                        .get("enum")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                },
                "list" => Shape::List {
                    member: shape_ref(s, "member", &ctx)?,
                },
                "map" => Shape::Map {
                    value: shape_ref(s, "value", &ctx)?,
                },
                "boolean" => Shape::Boolean,
                "integer" => Shape::Integer,
                "long" => Shape::Long,
                "double" | "float" => Shape::Double,
                "timestamp" => Shape::Timestamp,
                "blob" => Shape::Blob,
                other => return Err(format!("{ctx}: unsupported shape type {other:?}")),
            };
            shapes.insert(name.clone(), shape);
        }
        let mut ops = Vec::new();
        let op_json = json
            .get("operations")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{file}: no operations"))?;
        for (name, o) in op_json {
            let ctx = format!("{file}: operation {name}");
            let http = o.get("http").ok_or_else(|| format!("{ctx}: no http"))?;
            let mut errors: Vec<String> = o
                .get("errors")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.get("shape").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            errors.sort();
            errors.dedup();
            ops.push(Op {
                name: name.clone(),
                method: str_field(http, "method", &ctx)?.to_owned(),
                request_uri: str_field(http, "requestUri", &ctx)?.to_owned(),
                input: o
                    .get("input")
                    .map(|_| shape_ref(o, "input", &ctx))
                    .transpose()?,
                output: o
                    .get("output")
                    .map(|_| shape_ref(o, "output", &ctx))
                    .transpose()?,
                errors,
            });
        }
        ops.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Model {
            file: file.to_owned(),
            service,
            protocol: str_field(meta, "protocol", file)?.to_owned(),
            api_version: str_field(meta, "apiVersion", file)?.to_owned(),
            signing_name,
            target_prefix: meta
                .get("targetPrefix")
                .and_then(Value::as_str)
                .map(str::to_owned),
            shapes,
            ops,
        })
    }
}

// ---------------------------------------------------------------------------
// Naming

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// `S3BucketName` → `s3_bucket_name`, `SnsTopicARN` → `sns_topic_arn`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower);
            if boundary && !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    let out = out.trim_end_matches('_').to_owned();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{out}")
    } else {
        out
    }
}

fn field_ident(name: &str) -> String {
    let snake = snake_case(name);
    if matches!(snake.as_str(), "self" | "super" | "crate" | "_") {
        format!("{snake}_")
    } else if KEYWORDS.contains(&snake.as_str()) {
        format!("r#{snake}")
    } else {
        snake
    }
}

/// `EXTENDABLE_RETENTION_PRICING` → `ExtendableRetentionPricing`; `insight` → `Insight`.
fn variant_name(value: &str) -> String {
    let mut out = String::new();
    for part in value.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        let Some(first) = chars.next() else { continue };
        out.push(first.to_ascii_uppercase());
        let rest: String = chars.collect();
        if part.chars().any(|c| c.is_ascii_lowercase()) {
            out.push_str(&rest);
        } else {
            out.push_str(&rest.to_ascii_lowercase());
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    if matches!(out.as_str(), "Unknown" | "Self") {
        out.push_str("Value");
    }
    out
}

fn screaming(name: &str) -> String {
    snake_case(name).to_ascii_uppercase()
}

// ---------------------------------------------------------------------------
// Generation

struct Generator<'a> {
    shapes: BTreeMap<&'a str, &'a Shape>,
}

impl<'a> Generator<'a> {
    fn shape(&self, name: &str) -> Result<&'a Shape> {
        self.shapes
            .get(name)
            .copied()
            .ok_or_else(|| format!("unknown shape {name}"))
    }

    fn rust_type(&self, name: &str) -> Result<String> {
        Ok(match self.shape(name)? {
            Shape::Structure { .. } => name.to_owned(),
            Shape::String { values } if !values.is_empty() => name.to_owned(),
            Shape::String { .. } => "String".to_owned(),
            Shape::List { member } => format!("Vec<{}>", self.rust_type(member)?),
            Shape::Map { value } => {
                format!(
                    "std::collections::BTreeMap<String, {}>",
                    self.rust_type(value)?
                )
            }
            Shape::Boolean => "bool".to_owned(),
            Shape::Integer => "i32".to_owned(),
            Shape::Long => "i64".to_owned(),
            Shape::Double => "f64".to_owned(),
            Shape::Timestamp => "crate::Timestamp".to_owned(),
            Shape::Blob => "crate::Blob".to_owned(),
        })
    }

    /// Structures reachable from `from` through fields stored inline (structure
    /// members, not through `Vec`/`BTreeMap`, which already allocate).
    fn inline_reaches(&self, from: &str, target: &str, seen: &mut BTreeSet<String>) -> bool {
        if from == target {
            return true;
        }
        if !seen.insert(from.to_owned()) {
            return false;
        }
        if let Some(Shape::Structure { members, .. }) = self.shapes.get(from) {
            for m in members {
                if matches!(
                    self.shapes.get(m.shape.as_str()),
                    Some(Shape::Structure { .. })
                ) && self.inline_reaches(&m.shape, target, seen)
                {
                    return true;
                }
            }
        }
        false
    }

    fn collect(&self, name: &str, out: &mut BTreeSet<String>) -> Result<()> {
        if !out.insert(name.to_owned()) {
            return Ok(());
        }
        match self.shape(name)? {
            Shape::Structure { members, exception } => {
                if *exception {
                    return Err(format!(
                        "exception shape {name} is an operation input or output"
                    ));
                }
                for m in members {
                    self.collect(&m.shape, out)?;
                }
            }
            Shape::List { member } => self.collect(member, out)?,
            Shape::Map { value } => self.collect(value, out)?,
            _ => {}
        }
        Ok(())
    }
}

fn generate(models: &[Model]) -> Result<String> {
    // Merge the models' shapes; a name both models define must agree.
    let mut shapes: BTreeMap<&str, &Shape> = BTreeMap::new();
    for model in models {
        for (name, shape) in &model.shapes {
            if let Some(existing) = shapes.get(name.as_str()) {
                let compatible = *existing == shape
                    || matches!(
                        (existing, shape),
                        (
                            Shape::Structure {
                                exception: true,
                                ..
                            },
                            Shape::Structure {
                                exception: true,
                                ..
                            }
                        )
                    );
                if !compatible {
                    return Err(format!(
                        "shape {name} differs between models ({})",
                        model.file
                    ));
                }
            }
            shapes.insert(name, shape);
        }
    }
    let generator = Generator { shapes };

    let mut ops: Vec<(&Model, &Op)> = models
        .iter()
        .flat_map(|m| m.ops.iter().map(move |o| (m, o)))
        .collect();
    ops.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    for pair in ops.windows(2) {
        if pair[0].1.name == pair[1].1.name {
            return Err(format!("operation {} is defined twice", pair[0].1.name));
        }
    }

    let mut reachable = BTreeSet::new();
    for (_, op) in &ops {
        for shape in op.input.iter().chain(op.output.iter()) {
            generator.collect(shape, &mut reachable)?;
        }
    }

    let mut src = String::new();
    let files: Vec<&str> = models.iter().map(|m| m.file.as_str()).collect();
    writeln!(
        src,
        "// @generated by `cargo xtask codegen` from {} with {EXTENSIONS}; do not edit.",
        files.join(" and ")
    )
    .unwrap();
    src.push('\n');

    gen_services(&mut src, models);
    gen_operations(&mut src, &ops);
    gen_markers(&mut src, &ops);

    let mut bindings = Vec::new();
    for name in &reachable {
        if RESERVED_NAMES.contains(&name.as_str()) {
            match generator.shape(name)? {
                Shape::Structure { .. } => {
                    return Err(format!(
                        "structure shape {name} collides with a runtime name"
                    ))
                }
                Shape::String { values } if !values.is_empty() => {
                    return Err(format!("enum shape {name} collides with a runtime name"))
                }
                _ => {}
            }
        }
        match generator.shape(name)? {
            Shape::Structure { members, .. } => {
                gen_struct(&mut src, &generator, name, members, &mut bindings)?
            }
            Shape::String { values } if !values.is_empty() => gen_enum(&mut src, name, values)?,
            _ => {}
        }
    }
    gen_bindings(&mut src, &bindings);
    Ok(src)
}

fn gen_services(src: &mut String, models: &[Model]) {
    let mut prefixes = Vec::new();
    for m in models {
        if let Some(target) = &m.target_prefix {
            prefixes.push(format!("{target}."));
            if let Some(short) = target.rsplit('.').next() {
                if short != target {
                    prefixes.push(format!("{short}."));
                }
            }
        }
    }
    src.push_str(
        "/// JSON 1.1 `X-Amz-Target` prefixes, longest first; the operation name follows.\n",
    );
    src.push_str("pub const SERVICE_PREFIXES: &[&str] = &[");
    for p in &prefixes {
        write!(src, "{p:?},").unwrap();
    }
    src.push_str("];\n\n");
    for m in models {
        writeln!(
            src,
            "/// SigV4 signing name of {}.\npub const {}_SIGNING_NAME: &str = {:?};\n",
            m.service,
            m.signing_name.replace('-', "_").to_ascii_uppercase(),
            m.signing_name
        )
        .unwrap();
    }

    src.push_str("/// The services the models describe.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Service {\n");
    for m in models {
        writeln!(src, "{},", m.service).unwrap();
    }
    src.push_str("}\n\nimpl Service {\n");
    let arms = |src: &mut String, f: &dyn Fn(&Model) -> String| {
        src.push_str("match self {\n");
        for m in models {
            writeln!(src, "Service::{} => {:?},", m.service, f(m)).unwrap();
        }
        src.push_str("}\n}\n\n");
    };
    src.push_str(
        "/// The model's `serviceId` without spaces.\npub fn name(self) -> &'static str {\n",
    );
    arms(src, &|m| m.service.clone());
    src.push_str("/// SigV4 signing name, also the IAM action prefix.\npub fn signing_name(self) -> &'static str {\n");
    arms(src, &|m| m.signing_name.clone());
    src.push_str(
        "/// botocore protocol: `json` or `rest-json`.\npub fn protocol(self) -> &'static str {\n",
    );
    arms(src, &|m| m.protocol.clone());
    src.push_str("/// The model's API version.\npub fn api_version(self) -> &'static str {\n");
    arms(src, &|m| m.api_version.clone());
    src.push_str("}\n\nimpl std::fmt::Display for Service {\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\nf.write_str(self.name())\n}\n}\n\n");
}

fn gen_operations(src: &mut String, ops: &[(&Model, &Op)]) {
    src.push_str("/// Every modelled operation, alphabetical.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Operation {\n");
    for (_, op) in ops {
        writeln!(src, "{},", op.name).unwrap();
    }
    src.push_str("}\n\nimpl Operation {\n");
    writeln!(
        src,
        "/// All operations, alphabetical.\npub const ALL: [Operation; {}] = [",
        ops.len()
    )
    .unwrap();
    for (_, op) in ops {
        write!(src, "Operation::{},", op.name).unwrap();
    }
    src.push_str("];\n\n");

    let arms = |src: &mut String, f: &dyn Fn(&Model, &Op) -> String| {
        src.push_str("match self {\n");
        for (m, op) in ops {
            writeln!(src, "Operation::{} => {},", op.name, f(m, op)).unwrap();
        }
        src.push_str("}\n}\n\n");
    };
    src.push_str("/// The operation name as in the model and on the wire.\npub fn name(self) -> &'static str {\n");
    arms(src, &|_, op| format!("{:?}", op.name));
    src.push_str("/// The operation with this exact name.\npub fn from_name(name: &str) -> Option<Operation> {\nmatch name {\n");
    for (_, op) in ops {
        writeln!(src, "{:?} => Some(Operation::{}),", op.name, op.name).unwrap();
    }
    src.push_str("_ => None,\n}\n}\n\n");
    src.push_str("/// The service the operation belongs to.\npub fn service(self) -> Service {\n");
    arms(src, &|m, _| format!("Service::{}", m.service));
    src.push_str("/// The IAM action, `<signing name>:<operation>`.\npub fn iam_action(self) -> &'static str {\n");
    arms(src, &|m, op| {
        format!("{:?}", format!("{}:{}", m.signing_name, op.name))
    });
    src.push_str("/// The modelled error shape names, sorted.\npub fn errors(self) -> &'static [&'static str] {\n");
    arms(src, &|_, op| {
        let names: Vec<String> = op.errors.iter().map(|e| format!("{e:?}")).collect();
        format!("&[{}]", names.join(", "))
    });
    src.push_str("/// HTTP method and request URI from the model.\npub fn http(self) -> (&'static str, &'static str) {\n");
    arms(src, &|_, op| {
        format!("({:?}, {:?})", op.method, op.request_uri)
    });
    src.push_str("/// The input shape name (`Unit` when none is modelled).\npub fn input_shape(self) -> &'static str {\n");
    arms(src, &|_, op| {
        format!("{:?}", op.input.as_deref().unwrap_or("Unit"))
    });
    src.push_str("/// The output shape name (`Unit` when none is modelled).\npub fn output_shape(self) -> &'static str {\n");
    arms(src, &|_, op| {
        format!("{:?}", op.output.as_deref().unwrap_or("Unit"))
    });
    src.push_str("}\n\nimpl std::fmt::Display for Operation {\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\nf.write_str(self.name())\n}\n}\n\n");
}

fn gen_markers(src: &mut String, ops: &[(&Model, &Op)]) {
    src.push_str("/// Zero-sized marker types, one per operation, implementing [`crate::OperationShape`].\npub mod op {\n");
    for (_, op) in ops {
        let input = op.input.as_deref().unwrap_or("Unit");
        let output = op.output.as_deref().unwrap_or("Unit");
        writeln!(
            src,
            "/// Marker for `{name}`.\n#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]\npub struct {name};\n\n\
             impl crate::OperationShape for {name} {{\n\
             const OPERATION: crate::Operation = crate::Operation::{name};\n\
             type Input = crate::{input};\n\
             type Output = crate::{output};\n}}\n",
            name = op.name
        )
        .unwrap();
    }
    src.push_str("}\n\n");
}

/// (shape, member, location, locationName)
type Binding = (String, String, String, String);

fn gen_struct(
    src: &mut String,
    generator: &Generator<'_>,
    name: &str,
    members: &[Member],
    bindings: &mut Vec<Binding>,
) -> Result<()> {
    writeln!(
        src,
        "/// The `{name}` structure.\n#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]\npub struct {name} {{"
    )
    .unwrap();
    let mut idents = BTreeSet::new();
    for m in members {
        let ident = field_ident(&m.name);
        if !idents.insert(ident.clone()) {
            return Err(format!("{name}: two members map to field {ident}"));
        }
        let mut ty = generator.rust_type(&m.shape)?;
        if matches!(generator.shape(&m.shape)?, Shape::Structure { .. })
            && generator.inline_reaches(&m.shape, name, &mut BTreeSet::new())
        {
            ty = format!("Box<{ty}>");
        }
        if m.extension {
            writeln!(
                src,
                "/// OpenTrail extension ({EXTENSIONS}): not in botocore's model, so AWS SDKs ignore it."
            )
            .unwrap();
        }
        if let Some((location, location_name)) = &m.location {
            writeln!(src, "/// Bound to {location} `{location_name}`.").unwrap();
            bindings.push((
                name.to_owned(),
                m.name.clone(),
                location.clone(),
                location_name.clone(),
            ));
        }
        if m.required {
            writeln!(src, "#[serde(rename = {:?})]\npub {ident}: {ty},", m.name).unwrap();
        } else {
            writeln!(
                src,
                "#[serde(rename = {:?}, default, skip_serializing_if = \"Option::is_none\")]\npub {ident}: Option<{ty}>,",
                m.name
            )
            .unwrap();
        }
    }
    src.push_str("}\n\n");
    Ok(())
}

fn gen_enum(src: &mut String, name: &str, values: &[String]) -> Result<()> {
    let mut variants: Vec<String> = Vec::new();
    for value in values {
        let base = variant_name(value);
        let mut candidate = base.clone();
        let mut n = 2;
        while variants.contains(&candidate) {
            candidate = format!("{base}{n}");
            n += 1;
        }
        variants.push(candidate);
    }
    writeln!(
        src,
        "/// The `{name}` string enum; values outside the model parse as `Unknown`.\n\
         #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]\n\
         #[serde(from = \"String\", into = \"String\")]\npub enum {name} {{"
    )
    .unwrap();
    for (i, (variant, value)) in variants.iter().zip(values).enumerate() {
        let default = if i == 0 { "#[default]\n" } else { "" };
        writeln!(src, "/// `{value}`\n{default}{variant},").unwrap();
    }
    src.push_str("/// A value the model does not list.\nUnknown(String),\n}\n\n");

    writeln!(src, "impl {name} {{").unwrap();
    src.push_str("/// The values the model lists, in model order.\npub const VALUES: &[&str] = &[");
    for value in values {
        write!(src, "{value:?},").unwrap();
    }
    src.push_str("];\n\n/// The wire value.\npub fn as_str(&self) -> &str {\nmatch self {\n");
    for (variant, value) in variants.iter().zip(values) {
        writeln!(src, "{name}::{variant} => {value:?},").unwrap();
    }
    writeln!(
        src,
        "{name}::Unknown(value) => value.as_str(),\n}}\n}}\n}}\n"
    )
    .unwrap();

    writeln!(
        src,
        "impl From<&str> for {name} {{\nfn from(value: &str) -> Self {{\nmatch value {{"
    )
    .unwrap();
    for (variant, value) in variants.iter().zip(values) {
        writeln!(src, "{value:?} => {name}::{variant},").unwrap();
    }
    writeln!(
        src,
        "other => {name}::Unknown(other.to_owned()),\n}}\n}}\n}}\n\n\
         impl From<String> for {name} {{\nfn from(value: String) -> Self {{\n\
         match {name}::from(value.as_str()) {{\n{name}::Unknown(_) => {name}::Unknown(value),\nknown => known,\n}}\n}}\n}}\n\n\
         impl From<{name}> for String {{\nfn from(value: {name}) -> Self {{\nmatch value {{\n\
         {name}::Unknown(value) => value,\nknown => known.as_str().to_owned(),\n}}\n}}\n}}\n\n\
         impl std::fmt::Display for {name} {{\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n\
         f.write_str(self.as_str())\n}}\n}}\n"
    )
    .unwrap();
    Ok(())
}

fn gen_bindings(src: &mut String, bindings: &[Binding]) {
    let mut by_key: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for (shape, member, location, location_name) in bindings {
        by_key
            .entry((shape.clone(), location.clone()))
            .or_default()
            .push((member.clone(), location_name.clone()));
    }
    for ((shape, location), members) in &by_key {
        let kind = match location.as_str() {
            "querystring" => "QUERY",
            "header" => "HEADER",
            "uri" => "URI",
            other => other,
        };
        writeln!(
            src,
            "/// `{shape}` members bound to the {location}: (member name, name on the wire).\n\
             pub const {}_{}_MEMBERS: &[(&str, &str)] = &[",
            screaming(shape),
            kind.to_ascii_uppercase()
        )
        .unwrap();
        for (member, location_name) in members {
            write!(src, "({member:?}, {location_name:?}),").unwrap();
        }
        src.push_str("];\n\n");
    }
    src.push_str("/// Every member bound to a non-body HTTP location, by shape then member.\npub const HTTP_BINDINGS: &[crate::HttpBinding] = &[\n");
    let mut sorted: Vec<&Binding> = bindings.iter().collect();
    sorted.sort();
    for (shape, member, location, location_name) in sorted {
        writeln!(
            src,
            "crate::HttpBinding {{ shape: {shape:?}, member: {member:?}, location: {location:?}, location_name: {location_name:?} }},"
        )
        .unwrap();
    }
    src.push_str("];\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("S3BucketName"), "s3_bucket_name");
        assert_eq!(snake_case("SnsTopicARN"), "sns_topic_arn");
        assert_eq!(snake_case("KMSKeyId"), "kms_key_id");
        assert_eq!(snake_case("auditEvents"), "audit_events");
        assert_eq!(snake_case("EventDataStoreARN"), "event_data_store_arn");
        assert_eq!(field_ident("Type"), "r#type");
        assert_eq!(field_ident("Self"), "self_");
    }

    #[test]
    fn extensions_add_shapes_and_members() {
        let file = MODELS[0];
        let model = || {
            serde_json::json!({"shapes": {
                "Event": {"type": "structure", "members": {"EventId": {"shape": "String"}}},
                "String": {"type": "string"},
            }})
        };
        let overlay = serde_json::json!({"_documentation": "x", "models": {file: {
            "shapes": {"Extra": {"type": "structure", "members": {"A": {"shape": "String"}}}},
            "members": {"Event": {"Extra": {"shape": "Extra"}}},
        }}});
        let mut merged = model();
        apply_extensions(file, &mut merged, &overlay).unwrap();
        assert!(merged["shapes"]["Extra"].is_object());
        assert_eq!(
            merged["shapes"]["Event"]["members"]["Extra"][EXTENSION_MARK],
            Value::Bool(true)
        );
        // Other models are left alone.
        let mut other = model();
        apply_extensions(MODELS[1], &mut other, &overlay).unwrap();
        assert_eq!(other, model());

        for bad in [
            serde_json::json!({"model": {}}),
            serde_json::json!({"models": {"models/nope.json": {}}}),
            serde_json::json!({"models": {file: {"shape": {}}}}),
            serde_json::json!({"models": {file: {"shapes": {"String": {"type": "string"}}}}}),
            serde_json::json!({"models": {file: {"members": {"Nope": {"A": {"shape": "String"}}}}}}),
            serde_json::json!({"models": {file: {"members": {"String": {"A": {"shape": "String"}}}}}}),
            serde_json::json!({"models": {file: {"members": {"Event": {"EventId": {"shape": "String"}}}}}}),
        ] {
            assert!(apply_extensions(file, &mut model(), &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn variant_names() {
        assert_eq!(
            variant_name("EXTENDABLE_RETENTION_PRICING"),
            "ExtendableRetentionPricing"
        );
        assert_eq!(variant_name("insight"), "Insight");
        assert_eq!(variant_name("ApiCallRateInsight"), "ApiCallRateInsight");
        assert_eq!(variant_name("Unknown"), "UnknownValue");
        assert_eq!(variant_name("3x"), "V3x");
    }
}
