//! A small blocking HTTP/1.1 client for the sidecar's API: one request per
//! connection (the API closes every connection after its answer), plain
//! TCP or HTTPS through rustls, an optional bearer token, JSON bodies.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// The most a response may hold (the API's answers are small).
const MAX_RESPONSE: usize = 16 << 20;

/// Where the sidecar's API is and how to talk to it.
#[derive(Clone)]
pub struct Sidecar {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<String>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        write!(f, "Sidecar({})", self.base())
    }
}

/// `http://HOST:PORT` or `https://HOST:PORT` (an IPv6 address in
/// brackets; a trailing `/` is allowed): (https, host, port).
pub fn parse_url(url: &str) -> anyhow::Result<(bool, String, u16)> {
    let bad = |why: &str| anyhow::anyhow!("--sidecar {url:?}: {why}; expected http(s)://HOST:PORT");
    let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(bad("not an http:// or https:// URL"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('@') || rest.contains('?') {
        return Err(bad("only the scheme, host and port may be given"));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = after.strip_prefix(':').ok_or_else(|| bad("no port"))?;
            (host, port)
        }
        None => rest.rsplit_once(':').ok_or_else(|| bad("no port"))?,
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| bad("bad port"))?;
    Ok((https, host.to_string(), port))
}

impl Sidecar {
    /// Checks the URL, reads the token file (mode 0600, first line) and the
    /// CA file (PEM) for HTTPS.
    pub fn new(url: &str, token_file: Option<&Path>, ca_file: Option<&Path>) -> anyhow::Result<Sidecar> {
        let (https, host, port) = parse_url(url)?;
        let token = match token_file {
            Some(path) => Some(read_token(path)?),
            None => None,
        };
        let tls = match (https, ca_file) {
            (true, ca) => Some(Arc::new(client_config(ca)?)),
            (false, Some(_)) => bail!("--sidecar-ca is for an https:// --sidecar"),
            (false, None) => None,
        };
        Ok(Sidecar { host, port, tls, token })
    }

    /// `http(s)://HOST:PORT`, for messages.
    pub fn base(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// One request; returns the status and the body. `timeout` bounds the
    /// connect and each read and write.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<(u16, String)> {
        let timeout = timeout.max(Duration::from_millis(50));
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", self.base()))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = match (tcp, last) {
            (Some(tcp), _) => tcp,
            (None, Some(e)) => return Err(e).with_context(|| format!("connecting to {}", self.base())),
            (None, None) => bail!("{}: the host has no address", self.base()),
        };
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        tcp.set_nodelay(true)?;
        let raw = self.encode(method, path, body);
        let response = match &self.tls {
            None => exchange(tcp, &raw),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .with_context(|| format!("{:?} is not a host name for TLS", self.host))?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .context("starting the TLS handshake")?;
                exchange(rustls::StreamOwned::new(conn, tcp), &raw)
            }
        }
        .with_context(|| format!("{method} {}{path}", self.base()))?;
        parse_response(&response).with_context(|| format!("{method} {}{path}: bad response", self.base()))
    }

    fn encode(&self, method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let mut raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: gapless-hook\r\nAccept: application/json\r\nConnection: close\r\n",
            self.port
        );
        if let Some(token) = &self.token {
            raw.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        let body = body.unwrap_or("");
        if method == "POST" || !body.is_empty() {
            raw.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        raw.push_str(body);
        raw.into_bytes()
    }
}

/// Sends the request and reads the answer until the body is complete (by
/// its Content-Length) or the server closes.
fn exchange(mut stream: impl Read + Write, raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    stream.write_all(raw).context("sending")?;
    stream.flush().context("sending")?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if response_complete(&out) {
            return Ok(out);
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_RESPONSE {
                    bail!("the response is larger than {MAX_RESPONSE} bytes");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A TLS peer that closes without close_notify: what came is
            // checked by its Content-Length below.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => return Ok(out),
            Err(e) => return Err(e).context("reading the response"),
        }
    }
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}

/// [`content_length`], for the fake sidecar of the hook's tests.
#[cfg(test)]
pub(crate) fn tests_content_length(head: &str) -> Option<usize> {
    content_length(head)
}

fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = head_end(buf) else { return false };
    let head = String::from_utf8_lossy(&buf[..end]);
    content_length(&head).is_some_and(|len| buf.len() >= end + len)
}

/// (status, body) of a whole response.
pub(crate) fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, String)> {
    let end = head_end(raw).context("the connection closed before the response head was complete")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x response: {status_line:?}");
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut body = &raw[end..];
    if let Some(len) = content_length(&head) {
        if body.len() < len {
            bail!("the body ended after {} of {len} bytes", body.len());
        }
        body = &body[..len];
    }
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

/// The token: the first line of a file only its owner may read.
fn read_token(path: &Path) -> anyhow::Result<String> {
    crate::private_file::check_private(path)
        .map_err(|why| anyhow::anyhow!("--sidecar-token-file {}: {why}", path.display()))?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--sidecar-token-file {}: cannot read it", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!(
            "--sidecar-token-file {}: the first line must be the token (printable ASCII, no spaces)",
            path.display()
        );
    }
    Ok(token)
}

/// rustls with the ring provider, trusting the CA file's certificates (or,
/// without one, nothing: HTTPS then needs --sidecar-ca).
fn client_config(ca: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let ca = ca.context("an https:// --sidecar needs --sidecar-ca FILE (the CA certificate, PEM)")?;
    let bytes =
        std::fs::read(ca).with_context(|| format!("--sidecar-ca {}: cannot read it", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert
            .map_err(|e| anyhow::anyhow!("--sidecar-ca {}: not a PEM certificate file: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| {
            anyhow::anyhow!("--sidecar-ca {}: a certificate rustls refuses: {e}", ca.display())
        })?;
        count += 1;
    }
    if count == 0 {
        bail!("--sidecar-ca {}: no certificate in it (expected PEM: BEGIN CERTIFICATE)", ca.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("http://10.0.0.5:9306").unwrap(), (false, "10.0.0.5".into(), 9306));
        assert_eq!(parse_url("https://side.example:9306/").unwrap(), (true, "side.example".into(), 9306));
        assert_eq!(parse_url("http://[::1]:9306").unwrap(), (false, "::1".into(), 9306));
        for (bad, why) in [
            ("10.0.0.5:9306", "not an http"),
            ("http://h", "no port"),
            ("http://h:0", "bad port"),
            ("http://h:x", "bad port"),
            ("http://:1", "empty host"),
            ("http://h:1/v1", "only the scheme"),
            ("http://u@h:1", "only the scheme"),
            ("http://[::1:1", "unclosed"),
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn responses() {
        let raw = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}extra";
        assert!(response_complete(raw));
        assert_eq!(parse_response(raw).unwrap(), (202, "{\"a\":1}".to_string()));
        assert!(!response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").is_err());
        assert_eq!(parse_response(b"HTTP/1.1 404 Not Found\r\n\r\nno").unwrap(), (404, "no".to_string()));
        assert!(parse_response(b"SSH-2.0 hi\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn https_needs_a_ca_and_http_refuses_one() {
        let e = Sidecar::new("https://h:1", None, None).unwrap_err().to_string();
        assert!(e.contains("--sidecar-ca"), "{e}");
        let e = Sidecar::new("http://h:1", None, Some(Path::new("/nonexistent"))).unwrap_err().to_string();
        assert!(e.contains("https://"), "{e}");
    }
}
