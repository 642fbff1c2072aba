//! Serving the files of a folder: tower-http's `ServeDir`, confined to the folder. `ServeDir`
//! refuses `..` but follows symbolic links wherever they point, so a link in a served folder
//! (or one an instrument's software writes there) would publish any file of the machine. Here
//! a request whose file, links resolved, lies outside the folder is answered `404`, as if it
//! did not exist; links that stay inside keep working.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Problem;

/// The folder's files as a router, to nest under a path.
pub(crate) fn serve(folder: &Path) -> Router {
    Router::new()
        .fallback_service(tower_http::services::ServeDir::new(folder))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(folder.to_owned()),
            confine,
        ))
}

/// Lets a request through only if the file it names resolves inside the folder.
async fn confine(State(root): State<Arc<PathBuf>>, request: Request, next: Next) -> Response {
    let relative: PathBuf = request
        .uri()
        .path()
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let (root_resolved, file_resolved) = tokio::join!(
        tokio::fs::canonicalize(root.as_ref()),
        tokio::fs::canonicalize(root.join(&relative)),
    );
    match (root_resolved, file_resolved) {
        (Ok(root), Ok(file)) if !file.starts_with(&root) => {
            tracing::warn!(
                file = %file.display(),
                folder = %root.display(),
                "refused a file outside the served folder (a symbolic link leads there)"
            );
            Problem::new(StatusCode::NOT_FOUND)
                .with_detail("No such file in this folder.")
                .into_response()
        }
        // Inside, or missing (ServeDir answers the 404).
        _ => next.run(request).await,
    }
}
