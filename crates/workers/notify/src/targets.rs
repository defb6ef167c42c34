//! Which webhook targets may be POSTed to. A subscription refuses (unless created with
//! `allow_private_targets`) every address that is not public: loopback, private
//! (RFC 1918), shared (100.64.0.0/10), link-local (169.254.0.0/16 — cloud metadata
//! services — and fe80::/10), unique-local (fc00::/7), site-local, unspecified, broadcast
//! and multicast, also inside IPv4-mapped, -compatible and NAT64 IPv6 addresses. A host
//! name is resolved and every address checked, when subscribing and again before each
//! notification; the notification then goes to exactly the addresses checked (no second
//! lookup a rebinding DNS server could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

use crate::NotifyError;

/// Why `ip` is not a public address, or `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() || a >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address.
    let embedded = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    if segments[..6].iter().all(|s| *s == 0) || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_reason(embedded);
    }
    match segments[0] {
        s if s & 0xfe00 == 0xfc00 => Some("unique-local"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

fn refusal(url: &Url, ip: IpAddr, why: &str) -> String {
    format!(
        "webhook target {} is refused: {ip} is a {why} address (allow private targets to use it)",
        crate::topic::redact_url(url.as_str())
    )
}

fn check_all(url: &Url, addresses: &[SocketAddr]) -> Result<(), String> {
    for address in addresses {
        if let Some(why) = non_public_reason(address.ip()) {
            return Err(refusal(url, address.ip(), why));
        }
    }
    Ok(())
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// When subscribing (blocking): an IP literal must be public; a host name must resolve to
/// public addresses only. A name that does not resolve now is accepted: it is checked
/// again before every notification.
pub(crate) fn check_when_subscribing(url: &Url) -> Result<(), NotifyError> {
    use std::net::ToSocketAddrs;
    if let Some(ip) = literal_ip(url) {
        return match non_public_reason(ip) {
            Some(why) => Err(NotifyError::InvalidParameter(refusal(url, ip, why))),
            None => Ok(()),
        };
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Ok(());
    };
    match (host, port).to_socket_addrs() {
        Ok(addresses) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            check_all(url, &addresses).map_err(NotifyError::InvalidParameter)
        }
        Err(error) => {
            tracing::warn!(host, %error, "webhook host does not resolve now; it is checked before each notification");
            Ok(())
        }
    }
}

/// Before a notification: the addresses to send to, all public. `None` for an IP
/// literal (nothing to pin); `Some((host, addresses))` for a host name.
pub(crate) async fn resolve_public(url: &Url) -> Result<Option<(String, Vec<SocketAddr>)>, String> {
    if let Some(ip) = literal_ip(url) {
        return match non_public_reason(ip) {
            Some(why) => Err(refusal(url, ip, why)),
            None => Ok(None),
        };
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(format!(
            "webhook url {} has no host",
            crate::topic::redact_url(url.as_str())
        ));
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve webhook host {host}: {e}"))?
        .collect();
    if addresses.is_empty() {
        return Err(format!("webhook host {host} has no addresses"));
    }
    check_all(url, &addresses)?;
    Ok(Some((host.to_owned(), addresses)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(non_public_reason(ip).is_some(), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert_eq!(non_public_reason(ip), None, "{public}");
        }
    }

    #[test]
    fn literals_and_names_are_checked_when_subscribing() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/x",
            "http://localhost:9/x",
            "http://[::ffff:10.1.2.3]/x",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(check_when_subscribing(&url).is_err(), "{url}");
        }
        assert!(check_when_subscribing(&Url::parse("https://8.8.8.8/hook").unwrap()).is_ok());
    }

    #[tokio::test]
    async fn checked_again_before_sending() {
        let url = Url::parse("http://localhost:1/x").unwrap();
        assert!(resolve_public(&url).await.unwrap_err().contains("loopback"));
        let url = Url::parse("http://127.0.0.1:1/x").unwrap();
        assert!(resolve_public(&url).await.is_err());
        let url = Url::parse("https://1.1.1.1/x").unwrap();
        assert_eq!(resolve_public(&url).await.unwrap(), None);
    }
}
