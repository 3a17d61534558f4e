//! What the resolver needs to know of the request a credential arrived in, and the
//! secure-connection rule applied to it.
//!
//! A request is secure when its own socket was TLS, or when proxies keyroute trusts
//! say the client's connection was HTTPS. Forwarded headers are read from the right:
//! each proxy appends what it saw, so the rightmost value is the one the peer (the
//! last proxy) vouches for, and a value a client wrote itself is always further left.
//! One value is consumed per trusted hop; the first value not added by a trusted
//! proxy decides. `X-Forwarded-Proto: https, http` (a client's `https` followed by
//! the proxy's `http`) is therefore plain HTTP.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;
use keyroute_core::{AuthError, Principal};

/// What the resolver needs to know about the request a credential arrived in.
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'a> {
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    tls: bool,
    peer: Option<IpAddr>,
    caller: Option<&'a Principal>,
    cost: u64,
}

impl<'a> IncomingRequest<'a> {
    /// A request with these headers, no query string, not over TLS, from no known peer.
    pub fn new(headers: &'a HeaderMap) -> Self {
        Self {
            headers,
            query: None,
            tls: false,
            peer: None,
            caller: None,
            cost: 1,
        }
    }

    /// What the request costs against the caller's usage limits and credits: 1
    /// unless set; 0 checks the limits without spending.
    pub fn with_cost(mut self, cost: u64) -> Self {
        self.cost = cost;
        self
    }

    /// The request's cost ([`with_cost`](Self::with_cost)).
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// Sets the raw query string (read only if the extractor enables a query parameter).
    pub fn with_query(mut self, query: Option<&'a str>) -> Self {
        self.query = query;
        self
    }

    /// Says whether the request arrived over TLS.
    pub fn over_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// The address of the socket's other end. Forwarded headers count only when it is
    /// one of the `trusted_proxies`.
    pub fn from_peer(mut self, peer: Option<IpAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// The caller this request was already authenticated as earlier in its handling
    /// (by an authenticating layer, or an earlier extractor of the same request), if
    /// any: authentication then takes it as it is and reads no credential again.
    /// Only code that authenticated the request itself may say so; never take it from
    /// anything the client sent.
    pub fn with_caller(mut self, caller: Option<&'a Principal>) -> Self {
        self.caller = caller;
        self
    }
}

impl IncomingRequest<'_> {
    /// The headers.
    pub(crate) fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The raw query string, if one was given.
    pub(crate) fn query(&self) -> Option<&str> {
        self.query
    }

    /// The caller the request was already authenticated as, if any.
    pub(crate) fn caller(&self) -> Option<&Principal> {
        self.caller
    }

    /// unless `dangerous_accept_plain_http`: the request must have come over TLS, or through
    /// trusted proxies that say the client's connection was HTTPS.
    pub(crate) fn check_transport(
        &self,
        require_secure: bool,
        dangerous_trust_any_proxy: bool,
        trusted_proxies: &[ProxyNet],
    ) -> Result<(), AuthError> {
        if !require_secure || self.is_secure(dangerous_trust_any_proxy, trusted_proxies) {
            Ok(())
        } else {
            Err(AuthError::InsecureConnection)
        }
    }

    /// The client's address, as far as this request can show: the socket's peer, or,
    /// when the peer is a trusted proxy, the address the proxies forwarded: walking
    /// `X-Forwarded-For` (or, without it, `Forwarded: for=`) from the right past
    /// trusted proxies, the first address that is not one. `None` when no peer is
    /// known or a forwarded address cannot be read (a key bound to networks is then
    /// refused: the address could be anything).
    pub fn client_ip(
        &self,
        dangerous_trust_any_proxy: bool,
        trusted_proxies: &[ProxyNet],
    ) -> Option<IpAddr> {
        let peer = self.peer?;
        let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
        // With `dangerous_trust_any_proxy` and no list, the peer is one proxy.
        let any_one = dangerous_trust_any_proxy && trusted_proxies.is_empty();
        if !(trusted(peer) || any_one) {
            return Some(peer);
        }
        let hops: Vec<IpAddr> = if self.headers.contains_key("x-forwarded-for") {
            values(self.headers, "x-forwarded-for")?
                .iter()
                .map(|hop| hop.parse().ok())
                .collect::<Option<_>>()?
        } else if self.headers.contains_key(http::header::FORWARDED) {
            values(self.headers, "forwarded")?
                .iter()
                .map(|element| pair(element, "for").and_then(|node| node_ip(&node)))
                .collect::<Option<_>>()?
        } else {
            return Some(peer);
        };
        if any_one {
            return hops.last().copied().or(Some(peer));
        }
        hops.iter()
            .rev()
            .find(|hop| !trusted(**hop))
            .or(hops.first())
            .copied()
            .or(Some(peer))
    }

    /// Whether the client's connection was secure, as far as this request can show.
    pub fn is_secure(&self, dangerous_trust_any_proxy: bool, trusted_proxies: &[ProxyNet]) -> bool {
        if self.tls {
            return true;
        }
        let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
        // With `dangerous_trust_any_proxy` and no list, the peer is taken to be one proxy.
        let peer_trusted = self.peer.is_some_and(trusted)
            || (dangerous_trust_any_proxy && trusted_proxies.is_empty());
        if !peer_trusted {
            return false;
        }
        let forwarded = forwarded_proto(self.headers, &trusted);
        let x_forwarded = x_forwarded_proto(self.headers, &trusted);
        match (forwarded, x_forwarded) {
            (None, None) => false,
            // Every header present must say HTTPS: two proxies disagreeing is not secure.
            (a, b) => a.is_none_or(is_https) && b.is_none_or(is_https),
        }
    }
}

fn is_https(proto: String) -> bool {
    proto.eq_ignore_ascii_case("https")
}

/// The comma-separated values of every `name` header, in order; `None` if a value is
/// not text (such a header is not trusted at all).
fn values(headers: &HeaderMap, name: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        let text = value.to_str().ok()?;
        out.extend(text.split(',').map(|v| v.trim().to_owned()));
    }
    Some(out)
}

/// RFC 7239: walk the elements from the right while the element was added for a
/// trusted proxy; the first other element's `proto` decides. `Some("")` (never
/// https) for a header that is present but unreadable or names no protocol.
fn forwarded_proto(headers: &HeaderMap, trusted: &impl Fn(IpAddr) -> bool) -> Option<String> {
    if !headers.contains_key(http::header::FORWARDED) {
        return None;
    }
    let Some(elements) = values(headers, "forwarded") else {
        return Some(String::new());
    };
    let mut chosen = None;
    for element in elements.iter().rev() {
        chosen = Some(element);
        let from_proxy = pair(element, "for")
            .and_then(|node| node_ip(&node))
            .is_some_and(trusted);
        if !from_proxy {
            break;
        }
    }
    Some(chosen.and_then(|e| pair(e, "proto")).unwrap_or_default())
}

/// `X-Forwarded-Proto`: one value per trusted hop from the right, the hops counted
/// from the right of `X-Forwarded-For` (the peer itself is the first hop).
fn x_forwarded_proto(headers: &HeaderMap, trusted: &impl Fn(IpAddr) -> bool) -> Option<String> {
    if !headers.contains_key("x-forwarded-proto") {
        return None;
    }
    let Some(protos) = values(headers, "x-forwarded-proto") else {
        return Some(String::new());
    };
    let chain = values(headers, "x-forwarded-for").unwrap_or_default();
    let proxies_before_peer = chain
        .iter()
        .rev()
        .take_while(|hop| hop.parse::<IpAddr>().is_ok_and(trusted))
        .count();
    let hops = proxies_before_peer.saturating_add(1).min(protos.len());
    let index = protos.len().saturating_sub(hops);
    Some(protos.get(index).cloned().unwrap_or_default())
}

/// The value of `name` in one `Forwarded` element (`for=...;proto=https`), unquoted.
fn pair(element: &str, name: &str) -> Option<String> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The address in a `Forwarded` node: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:80`.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.parse()
        .ok()
        .or_else(|| node.split(':').next()?.parse().ok())
}

/// One entry of `[resolver] trusted_proxies`: an address range in CIDR form
/// (`10.0.0.0/8`, `::1/128`), or one address.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

impl ProxyNet {
    /// Whether `ip` is in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why a `trusted_proxies` entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an address range: write e.g. 10.0.0.0/8, 127.0.0.1/32 or ::1/128 in `[resolver] trusted_proxies`"
)]
pub struct ProxyNetError(String);

impl FromStr for ProxyNet {
    type Err = ProxyNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let error = || ProxyNetError(s.chars().take(64).collect());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| error())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| error())?,
            None => max,
        };
        if prefix > max {
            return Err(error());
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Debug for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Written as its CIDR text.
impl serde::Serialize for ProxyNet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read from CIDR text (or one address), as [`FromStr`].
impl<'de> serde::Deserialize<'de> for ProxyNet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
