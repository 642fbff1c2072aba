//! [`Base`]: the URL that a request reached the server at, which links in Thing Descriptions,
//! invocations and websocket messages are relative to.

use axum::http::{HeaderMap, header};

/// How to compute the base URL for a request.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    /// The configured public URL, ending in `/`, if any.
    pub(crate) public_url: Option<String>,
    /// The API prefix (`/api`), or empty.
    pub(crate) prefix: String,
}

impl Base {
    /// The URL that Thing paths are relative to, ending in `/`: the public URL when one is
    /// configured, otherwise built from the request's `Host`.
    pub(crate) fn url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
            .unwrap_or("localhost");
        format!("http://{host}{}/", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_base_is_the_public_url_or_the_host_with_the_prefix() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("lab:5000"));
        let base = Base {
            public_url: None,
            prefix: "/api".into(),
        };
        assert_eq!(base.url(&headers), "http://lab:5000/api/");
        assert_eq!(base.url(&HeaderMap::new()), "http://localhost/api/");
        let public = Base {
            public_url: Some("https://scope.example/".into()),
            prefix: String::new(),
        };
        assert_eq!(public.url(&headers), "https://scope.example/");
    }
}
