//! What an action returns: JSON, nothing, or a [`Blob`]; and how a failure is reported.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::schema::json_schema_of;

/// A binary action output (a captured image), served at `/blob/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The bytes.
    pub data: Bytes,
    /// Their media type, such as `image/jpeg`.
    pub media_type: String,
    /// Where the bytes are instead, for a blob kept in a file (a recording).
    file: Option<std::path::PathBuf>,
    /// JSON shown with the link in the invocation (the instrument's state at a capture).
    metadata: Option<Value>,
}

impl Blob {
    /// A blob of `data` with the given media type.
    pub fn new(data: impl Into<Bytes>, media_type: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            media_type: media_type.into(),
            file: None,
            metadata: None,
        }
    }

    /// Shows `metadata` beside the link in the invocation's output (`output.metadata`): what a
    /// client should know about the bytes without fetching them, such as
    /// [`ActionContext::snapshot`](crate::ActionContext::snapshot) at a capture.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The metadata given with [`with_metadata`](Self::with_metadata).
    pub fn metadata(&self) -> Option<&Value> {
        self.metadata.as_ref()
    }

    /// A blob whose bytes are the file at `path` (served from there, with range requests, and
    /// never read into memory whole): for outputs too big to hold, such as recordings. The
    /// file must stay there as long as the invocation is kept.
    pub fn from_file(path: impl Into<std::path::PathBuf>, media_type: impl Into<String>) -> Self {
        Self {
            data: Bytes::new(),
            media_type: media_type.into(),
            file: Some(path.into()),
            metadata: None,
        }
    }

    /// The file the bytes are in, for a blob made with [`from_file`](Self::from_file).
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }
}

/// How a [`Blob`] output appears in its invocation: a link to fetch it from (the
/// labthings-fastapi shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Blob", description = "Binary output, fetched from `href`.")]
pub(crate) struct BlobLink {
    /// Where to fetch the bytes.
    pub(crate) href: String,
    /// Their media type.
    pub(crate) media_type: String,
    /// Always `output`.
    pub(crate) rel: &'static str,
    /// A note for people reading the invocation.
    pub(crate) description: &'static str,
    /// What the action said about the bytes, if anything (the instrument's state at a
    /// capture, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Value>,
}

impl BlobLink {
    pub(crate) fn new(href: String, blob: &Blob) -> Self {
        Self {
            href,
            media_type: blob.media_type.clone(),
            rel: "output",
            description: "The output of this action is not JSON; fetch it from this link.",
            metadata: blob.metadata.clone(),
        }
    }
}

/// What an action produced.
#[derive(Debug, Clone)]
pub enum ActionOutput {
    /// A JSON value (`null` for actions that return nothing).
    Json(Value),
    /// A numeric array, served as `.npy` or TIFF.
    Array(std::sync::Arc<super::array::NdArray>),
    /// Binary data.
    Blob(Blob),
}

impl ActionOutput {
    /// About how many bytes of memory the output holds (what an invocation kept for clients
    /// costs): a file's blob takes none.
    pub(crate) fn retained_bytes(&self) -> usize {
        let json = |value: &Value| serde_json::to_vec(value).map_or(0, |bytes| bytes.len());
        match self {
            Self::Json(value) => json(value),
            Self::Array(array) => array.data().bytes(),
            Self::Blob(blob) => blob.data.len() + blob.metadata.as_ref().map_or(0, json),
        }
    }

    /// The media type it is served as by default.
    pub(crate) fn media_type(&self) -> &str {
        match self {
            Self::Json(_) => "application/json",
            Self::Array(_) => super::array::NPY_MEDIA_TYPE,
            Self::Blob(blob) => &blob.media_type,
        }
    }
}

/// Why an action did not produce an output.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ActionFailure {
    /// It returned an error: the error's type name and message.
    Error {
        /// The Rust type of the error, shown as the problem's title.
        kind: String,
        /// Its message.
        message: String,
    },
    /// It returned a [`Problem`](crate::Problem): the invocation's error is that problem, its
    /// status kept (a `422` when the action found its input wrong).
    Problem(Box<crate::Problem>),
    /// It stopped because it was cancelled. The constructors of
    /// [`ActionDescriptor`](super::ActionDescriptor) never return it (the invocation knows
    /// whether a client asked to cancel, and ends an action that fails after that as
    /// `cancelled`); a hand-written run may.
    Cancelled,
}

/// An action's output: a serde `Serialize` + `JsonSchema` value, `()`, or a [`Blob`].
#[diagnostic::on_unimplemented(
    message = "an action cannot return `{Self}`: outputs are serde `Serialize` + `JsonSchema` values, `()` or a `Blob`",
    label = "not an action output",
    note = "for your own type, add `#[labthings::data]` to it"
)]
pub trait IntoOutput: Send + 'static {
    /// The output, or why there is none.
    ///
    /// # Errors
    ///
    /// An error if the value cannot be represented as JSON.
    fn into_output(self) -> Result<ActionOutput, ActionFailure>;
    /// The JSON Schema of the output.
    fn schema() -> Value;
}

// Errors name `IntoOutput` (and its note), not serde's and schemars' traits one by one.
#[diagnostic::do_not_recommend]
impl<T: Serialize + schemars::JsonSchema + Send + 'static> IntoOutput for T {
    fn into_output(self) -> Result<ActionOutput, ActionFailure> {
        serde_json::to_value(self)
            .map(ActionOutput::Json)
            .map_err(|error| ActionFailure::Error {
                kind: "SerializationError".to_owned(),
                message: format!("the output cannot be represented as JSON: {error}"),
            })
    }
    fn schema() -> Value {
        json_schema_of::<T>()
    }
}

impl IntoOutput for super::array::NdArray {
    fn into_output(self) -> Result<ActionOutput, ActionFailure> {
        Ok(ActionOutput::Array(std::sync::Arc::new(self)))
    }
    fn schema() -> Value {
        json_schema_of::<super::array::ArrayLink>()
    }
}

/// Whether an action's output schema is [`NdArray`](super::NdArray)'s: its output is an array
/// behind a link, served as `.npy` or TIFF.
pub(crate) fn is_array_schema(schema: &Value) -> bool {
    *schema == json_schema_of::<super::array::ArrayLink>()
}

/// Whether an action's output schema is [`Blob`]'s: its output is bytes behind a link.
pub(crate) fn is_blob_schema(schema: &Value) -> bool {
    *schema == json_schema_of::<BlobLink>()
}

impl IntoOutput for Blob {
    fn into_output(self) -> Result<ActionOutput, ActionFailure> {
        Ok(ActionOutput::Blob(self))
    }
    fn schema() -> Value {
        json_schema_of::<BlobLink>()
    }
}

/// What an action's method returned, as an output or a failure. An error is reported with its
/// type's name (without the module path) and its message; whether the action ended because a
/// client cancelled it is decided by the invocation (it knows whether a cancel was asked for),
/// not from the error's type.
pub(crate) fn outcome<O: IntoOutput, E: std::fmt::Display + 'static>(
    result: Result<O, E>,
) -> Result<ActionOutput, ActionFailure> {
    match result {
        Ok(value) => value.into_output(),
        Err(error) => {
            let any: &dyn std::any::Any = &error;
            if let Some(problem) = any.downcast_ref::<crate::Problem>() {
                return Err(ActionFailure::Problem(Box::new(problem.clone())));
            }
            Err(ActionFailure::Error {
                kind: error_title::<E>(),
                message: error.to_string(),
            })
        }
    }
}

/// The title an error of type `E` is reported with: its type's name, or `ActionError` for a
/// type that says nothing (a `String` or `&str` message, a boxed error).
fn error_title<E>() -> String {
    match short_type_name::<E>().as_str() {
        "String" | "str" | "&str" | "Cow" | "Box" | "Arc" => "ActionError".to_owned(),
        name => name.to_owned(),
    }
}

/// `my_crate::errors::StageError<u8>` → `StageError`.
fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the stage hit its limit")]
    struct LimitError;

    #[test]
    fn values_become_json_and_errors_their_type_and_message() {
        let ok: Result<u32, LimitError> = Ok(3);
        assert!(matches!(outcome(ok), Ok(ActionOutput::Json(v)) if v == 3));
        let failed: Result<u32, LimitError> = Err(LimitError);
        match outcome(failed) {
            Err(ActionFailure::Error { kind, message }) => {
                assert_eq!(kind, "LimitError");
                assert_eq!(message, "the stage hit its limit");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_blob_is_kept_as_bytes_and_described_as_its_link() {
        let blob = Blob::new(vec![1, 2], "image/jpeg");
        let ok: Result<Blob, LimitError> = Ok(blob.clone());
        assert!(matches!(outcome(ok), Ok(ActionOutput::Blob(b)) if b == blob));
        let schema = Blob::schema();
        assert_eq!(schema["title"], "Blob");
        assert!(schema["properties"]["href"].is_object(), "{schema}");
        let link = serde_json::to_value(BlobLink::new("blob/1".into(), &blob)).unwrap();
        assert_eq!(link["media_type"], "image/jpeg");
        assert_eq!(link["rel"], "output");
    }

    #[test]
    fn type_names_lose_their_path_and_parameters() {
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(short_type_name::<Vec<u8>>(), "Vec");
        assert_eq!(error_title::<LimitError>(), "LimitError");
        assert_eq!(
            error_title::<String>(),
            "ActionError",
            "not `[String]: ...`"
        );
        assert_eq!(error_title::<&str>(), "ActionError");
        assert_eq!(
            error_title::<Box<dyn std::error::Error + Send + Sync>>(),
            "ActionError"
        );
    }
}
