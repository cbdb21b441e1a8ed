//! The operating systems' captive-portal probes.
//!
//! Before sign-in every probe gets the portal's `302`, which is what makes
//! each OS open its sign-in sheet. After sign-in new connections no longer
//! reach the portal, but a probe on a keep-alive connection that was
//! redirected before sign-in still does; it gets the answer the OS expects
//! from the real probe server, so the sheet can say "connected" at once.

/// The answer an OS expects from its probe URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// 200 with exactly this body.
    Body(&'static str),
    /// 204 No Content.
    NoContent,
}

const APPLE_SUCCESS: &str = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>";

/// Recognises a probe by host (without port, lower case) and path.
pub fn recognise(host: &str, path: &str) -> Option<ProbeAnswer> {
    match (host, path) {
        // iOS, iPadOS, macOS (CNA).
        (
            "captive.apple.com"
            | "www.apple.com"
            | "www.appleiphonecell.com"
            | "www.itools.info"
            | "www.ibook.info"
            | "www.airport.us"
            | "www.thinkdifferent.us",
            _,
        ) if path.starts_with("/hotspot-detect.html")
            || path.starts_with("/library/test/success.html") =>
        {
            Some(ProbeAnswer::Body(APPLE_SUCCESS))
        }
        // Windows NCSI.
        ("www.msftconnecttest.com", "/connecttest.txt") => {
            Some(ProbeAnswer::Body("Microsoft Connect Test"))
        }
        ("www.msftncsi.com", "/ncsi.txt") => Some(ProbeAnswer::Body("Microsoft NCSI")),
        // Firefox.
        ("detectportal.firefox.com", p) if p.starts_with("/success.txt") => {
            Some(ProbeAnswer::Body("success\n"))
        }
        // Android, ChromeOS, and vendors that copy them (any host).
        (_, "/generate_204" | "/gen_204") => Some(ProbeAnswer::NoContent),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_os_probe() {
        assert_eq!(
            recognise("captive.apple.com", "/hotspot-detect.html"),
            Some(ProbeAnswer::Body(APPLE_SUCCESS))
        );
        assert_eq!(
            recognise("www.apple.com", "/library/test/success.html"),
            Some(ProbeAnswer::Body(APPLE_SUCCESS))
        );
        assert_eq!(
            recognise("connectivitycheck.gstatic.com", "/generate_204"),
            Some(ProbeAnswer::NoContent)
        );
        assert_eq!(
            recognise("clients3.google.com", "/generate_204"),
            Some(ProbeAnswer::NoContent)
        );
        assert_eq!(
            recognise("www.google.cn", "/generate_204"),
            Some(ProbeAnswer::NoContent)
        );
        assert_eq!(
            recognise("www.msftconnecttest.com", "/connecttest.txt"),
            Some(ProbeAnswer::Body("Microsoft Connect Test"))
        );
        assert_eq!(
            recognise("www.msftncsi.com", "/ncsi.txt"),
            Some(ProbeAnswer::Body("Microsoft NCSI"))
        );
        assert_eq!(
            recognise("detectportal.firefox.com", "/success.txt?ipv4"),
            Some(ProbeAnswer::Body("success\n"))
        );
    }

    #[test]
    fn ordinary_pages_are_not_probes() {
        assert_eq!(recognise("captive.apple.com", "/"), None);
        assert_eq!(recognise("example.com", "/hotspot-detect.html"), None);
        assert_eq!(recognise("www.msftconnecttest.com", "/redirect"), None);
    }
}
