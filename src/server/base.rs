//! [`Base`]: the URL that a request reached the server at, which links in Thing Descriptions,
//! invocations and websocket messages are relative to.

use super::forwarded::Reached;

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
    /// configured, otherwise as the client reached the server (scheme, host, and a trusted
    /// proxy's prefix; see [`Reached`]).
    pub(crate) fn url(&self, reached: &Reached) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let host = reached.host.as_deref().unwrap_or("localhost");
        format!(
            "{}://{host}{}{}/",
            reached.scheme, reached.prefix, self.prefix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_the_public_url_or_as_the_client_reached_the_server() {
        let reached = Reached {
            scheme: "http",
            host: Some("lab:5000".into()),
            prefix: String::new(),
            forwarded: false,
        };
        let base = Base {
            public_url: None,
            prefix: "/api".into(),
        };
        assert_eq!(base.url(&reached), "http://lab:5000/api/");
        let proxied = Reached {
            scheme: "https",
            host: Some("lab.example".into()),
            prefix: "/lab".into(),
            forwarded: true,
        };
        assert_eq!(base.url(&proxied), "https://lab.example/lab/api/");
        let unnamed = Reached {
            host: None,
            ..reached.clone()
        };
        assert_eq!(base.url(&unnamed), "http://localhost/api/");
        let public = Base {
            public_url: Some("https://scope.example/".into()),
            prefix: String::new(),
        };
        assert_eq!(public.url(&reached), "https://scope.example/");
    }
}
