//! DNS-SD over multicast DNS (RFC 6762, RFC 6763): the server announces itself as a `_wot._tcp`
//! service, as W3C WoT Discovery's introduction phase describes, with a `td` TXT record naming
//! the path of its `/.well-known/wot` description, `type=Thing` and its `scheme`.
//!
//! Only on the interfaces the server listens on: bound to `127.0.0.1`, multicast group
//! membership, announcements and answers are on the loopback interface alone; bound to one
//! address, on that address's interface; bound to every address (`0.0.0.0`), on every IPv4
//! interface that is up. It answers `PTR` queries for `_wot._tcp.local` (and the DNS-SD
//! service enumeration), `SRV`/`TXT` queries for its instance and `A` queries for its host
//! name, announces itself twice at start and says goodbye (TTL 0) at shutdown.
//!
//! Why not a crate's responder: mdns-sd (the maintained pure-Rust one) joins the multicast
//! group on every interface as its daemon starts, before it can be told which to use; a
//! server bound to loopback must not send anything on the lab's network. So this is a small
//! responder of our own: DNS messages are read and written by simple-dns, sockets by socket2,
//! interfaces listed by if-addrs.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use simple_dns::rdata::{A, PTR, RData, SRV, TXT};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QTYPE, ResourceRecord, TYPE};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const PORT: u16 = 5353;
/// The service type WoT Discovery registers.
pub(crate) const SERVICE: &str = "_wot._tcp.local";
const ENUMERATION: &str = "_services._dns-sd._udp.local";
/// RFC 6762's recommended TTLs: 75 minutes for records naming the service, 2 minutes for
/// host addresses and SRV.
const TTL_SERVICE: u32 = 4500;
const TTL_HOST: u32 = 120;

/// What the server announces.
#[derive(Debug, Clone)]
pub(crate) struct Advertisement {
    /// The service instance's label (`Simulated microscope on lab-pc:5000`).
    pub(crate) instance: String,
    /// The host's mDNS name, without `.local` (`lab-pc`).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// TXT record strings (`td=/.well-known/wot`, `type=Thing`, `scheme=http`).
    pub(crate) txt: Vec<String>,
}

impl Advertisement {
    fn instance_name(&self) -> String {
        format!("{}.{SERVICE}", self.instance)
    }

    fn host_name(&self) -> String {
        format!("{}.local", self.host)
    }
}

/// An instance label: at most 63 bytes, no dots (DNS-SD allows any UTF-8; simple-dns splits
/// names at dots).
pub(crate) fn instance_label(title: &str, host: &str, port: u16) -> String {
    let mut label = format!("{title} on {host}:{port}").replace('.', "-");
    while label.len() > 63 {
        label.pop();
    }
    label
}

/// The IPv4 interface addresses the server listens on, to announce on.
pub(crate) fn interfaces_for(bound: IpAddr) -> Vec<Ipv4Addr> {
    match bound {
        IpAddr::V4(address) if !address.is_unspecified() => vec![address],
        IpAddr::V6(address) if address.is_loopback() => vec![Ipv4Addr::LOCALHOST],
        IpAddr::V6(address) if !address.is_unspecified() => Vec::new(),
        // Every address: every IPv4 interface that is up.
        _ => if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter(|interface| interface.is_oper_up() && !interface.is_loopback())
            .filter_map(|interface| match interface.ip() {
                IpAddr::V4(address) => Some(address),
                IpAddr::V6(_) => None,
            })
            .collect(),
    }
}

/// Opens the mDNS socket on `interfaces` (joining the group on each, and nowhere else) and
/// answers for `advertisement` until `shutdown`.
///
/// # Errors
///
/// The socket cannot be opened or the group joined (another responder holding port 5353
/// without `SO_REUSEPORT`, say).
pub(crate) fn spawn(
    advertisement: Advertisement,
    interfaces: Vec<Ipv4Addr>,
    shutdown: CancellationToken,
) -> io::Result<tokio::task::JoinHandle<()>> {
    if interfaces.is_empty() {
        return Err(io::Error::other(
            "no IPv4 interface to announce on (mDNS here is IPv4)",
        ));
    }
    let socket = open(&interfaces)?;
    let responder = Responder {
        socket,
        interfaces,
        advertisement,
    };
    Ok(tokio::spawn(responder.run(shutdown)))
}

fn open(interfaces: &[Ipv4Addr]) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    // Only the groups joined below reach this socket, not every group of the host.
    #[cfg(target_os = "linux")]
    socket.set_multicast_all_v4(false)?;
    socket.set_multicast_ttl_v4(255)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)).into())?;
    for interface in interfaces {
        socket
            .join_multicast_v4(&GROUP, interface)
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot join the mDNS group on {interface}: {error}"),
                )
            })?;
    }
    UdpSocket::from_std(socket.into())
}

struct Responder {
    socket: UdpSocket,
    interfaces: Vec<Ipv4Addr>,
    advertisement: Advertisement,
}

/// How an answer is sent.
enum Reply {
    /// To the group, on every interface (each with its own address record).
    Multicast,
    /// To the asker's address and port (a one-shot "legacy" query from a port other than
    /// 5353, or one that asked for a unicast answer): `id` and `question` echoed for legacy.
    Unicast {
        to: SocketAddr,
        legacy: Option<(u16, Vec<u8>)>,
    },
}

impl Responder {
    async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            instance = %self.advertisement.instance,
            interfaces = ?self.interfaces,
            "announcing {SERVICE} over mDNS"
        );
        // Two announcements a second apart (RFC 6762, 8.3), answering queries meanwhile.
        let mut announcements = tokio::time::interval(Duration::from_secs(1));
        let mut announced = 0;
        let mut buffer = vec![0u8; 9000];
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = announcements.tick(), if announced < 2 => {
                    announced += 1;
                    self.send(&Reply::Multicast, TTL_SERVICE, &[Want::Service]).await;
                }
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok((length, from)) => self.answer(&buffer[..length], from).await,
                    Err(error) => {
                        tracing::debug!(%error, "mDNS receive failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        // Goodbye: the same records with TTL 0, so browsers forget the service at once.
        self.send(&Reply::Multicast, 0, &[Want::Service]).await;
        tracing::debug!("mDNS goodbye sent");
    }

    async fn answer(&self, data: &[u8], from: SocketAddr) {
        let Ok(query) = Packet::parse(data) else {
            return;
        };
        if query.has_flags(PacketFlag::RESPONSE) {
            return;
        }
        let instance = self.advertisement.instance_name().to_ascii_lowercase();
        let host = self.advertisement.host_name().to_ascii_lowercase();
        let mut wants = Vec::new();
        let mut unicast = false;
        let mut question = None;
        for asked in &query.questions {
            let name = asked.qname.to_string().to_ascii_lowercase();
            let name = name.trim_end_matches('.');
            let is = |wanted: TYPE| {
                matches!(asked.qtype, QTYPE::ANY) || asked.qtype == QTYPE::TYPE(wanted)
            };
            let want = if name == SERVICE && is(TYPE::PTR) {
                Want::Service
            } else if name == ENUMERATION && is(TYPE::PTR) {
                Want::Enumeration
            } else if name == instance && (is(TYPE::SRV) || is(TYPE::TXT)) {
                Want::Instance
            } else if name == host && is(TYPE::A) {
                Want::Address
            } else {
                continue;
            };
            unicast |= asked.unicast_response;
            if question.is_none() {
                let mut echoed = Packet::new_query(0);
                echoed.questions.push(asked.clone());
                question = echoed.build_bytes_vec().ok();
            }
            wants.push(want);
        }
        if wants.is_empty() {
            return;
        }
        let reply = if from.port() != PORT {
            Reply::Unicast {
                to: from,
                legacy: question.map(|question| (query.id(), question)),
            }
        } else if unicast {
            Reply::Unicast {
                to: from,
                legacy: None,
            }
        } else {
            Reply::Multicast
        };
        self.send(&reply, TTL_SERVICE, &wants).await;
    }

    /// Sends the records `wants` asks for, on each interface (multicast) or to one asker.
    async fn send(&self, reply: &Reply, ttl: u32, wants: &[Want]) {
        match reply {
            Reply::Multicast => {
                for interface in &self.interfaces {
                    let Some(packet) = self.packet(*interface, ttl, wants, None) else {
                        continue;
                    };
                    if let Err(error) =
                        socket2::SockRef::from(&self.socket).set_multicast_if_v4(interface)
                    {
                        tracing::debug!(%error, %interface, "mDNS: cannot choose the interface");
                        continue;
                    }
                    let group = SocketAddrV4::new(GROUP, PORT);
                    if let Err(error) = self.socket.send_to(&packet, group).await {
                        tracing::debug!(%error, %interface, "mDNS send failed");
                    }
                }
            }
            Reply::Unicast { to, legacy } => {
                // The address of the interface the asker can reach: its own, on loopback.
                let interface = match to.ip() {
                    IpAddr::V4(asker) if self.interfaces.contains(&asker) => asker,
                    _ => self.interfaces[0],
                };
                // Legacy answers carry at most 10 s TTLs (RFC 6762, 6.7).
                let ttl = if legacy.is_some() { ttl.min(10) } else { ttl };
                if let Some(packet) = self.packet(interface, ttl, wants, legacy.as_ref())
                    && let Err(error) = self.socket.send_to(&packet, to).await
                {
                    tracing::debug!(%error, %to, "mDNS unicast answer failed");
                }
            }
        }
    }

    /// A response with the records asked for and, as additional records, those a browser
    /// needs next (SRV, TXT and A after a PTR).
    fn packet(
        &self,
        interface: Ipv4Addr,
        ttl: u32,
        wants: &[Want],
        legacy: Option<&(u16, Vec<u8>)>,
    ) -> Option<Vec<u8>> {
        let advertisement = &self.advertisement;
        let (instance, host) = (advertisement.instance_name(), advertisement.host_name());
        let service = Name::new(SERVICE).ok()?;
        let instance_name = Name::new(&instance).ok()?;
        let host_name = Name::new(&host).ok()?;
        let mut txt = TXT::new();
        for entry in &advertisement.txt {
            txt.add_string(entry).ok()?;
        }
        let flush = legacy.is_none();
        fn make<'a>(
            name: Name<'a>,
            ttl: u32,
            rdata: RData<'a>,
            cache_flush: bool,
        ) -> ResourceRecord<'a> {
            let mut record = ResourceRecord::new(name, CLASS::IN, ttl, rdata);
            record.cache_flush = cache_flush;
            record
        }
        let record =
            |name, ttl, rdata, cache_flush: bool| make(name, ttl, rdata, cache_flush && flush);
        let srv = record(
            instance_name.clone(),
            ttl.min(TTL_HOST),
            RData::SRV(SRV {
                priority: 0,
                weight: 0,
                port: advertisement.port,
                target: host_name.clone(),
            }),
            true,
        );
        let text = record(instance_name.clone(), ttl, RData::TXT(txt), true);
        let address = record(
            host_name.clone(),
            ttl.min(TTL_HOST),
            RData::A(A {
                address: u32::from(interface),
            }),
            true,
        );
        let pointer = record(
            service.clone(),
            ttl,
            RData::PTR(PTR(instance_name.clone())),
            false,
        );
        let (id, question) = legacy.map_or((0, None), |(id, question)| (*id, Some(question)));
        let mut packet = Packet::new_reply(id);
        packet.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
        let echoed;
        if let Some(question) = question {
            echoed = Packet::parse(question).ok()?;
            packet.questions = echoed.questions.clone();
        }
        let (mut answers, mut additional) = (Vec::new(), Vec::new());
        for want in wants {
            match want {
                Want::Service => {
                    answers.push(pointer.clone());
                    additional.extend([srv.clone(), text.clone(), address.clone()]);
                }
                Want::Enumeration => answers.push(record(
                    Name::new(ENUMERATION).ok()?,
                    ttl,
                    RData::PTR(PTR(service.clone())),
                    false,
                )),
                Want::Instance => {
                    answers.extend([srv.clone(), text.clone()]);
                    additional.push(address.clone());
                }
                Want::Address => answers.push(address.clone()),
            }
        }
        packet.answers = answers;
        packet.additional_records = additional;
        packet.build_bytes_vec_compressed().ok()
    }
}

/// What a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// `PTR _wot._tcp.local`: the instance (with SRV, TXT, A).
    Service,
    /// `PTR _services._dns-sd._udp.local`: the service type.
    Enumeration,
    /// `SRV`/`TXT` of the instance.
    Instance,
    /// `A` of the host.
    Address,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_announce_on_loopback_only() {
        assert_eq!(
            interfaces_for(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            vec![Ipv4Addr::LOCALHOST]
        );
        assert_eq!(
            interfaces_for("::1".parse().unwrap()),
            vec![Ipv4Addr::LOCALHOST]
        );
        let every = interfaces_for(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(!every.contains(&Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn instance_labels_fit_one_dns_label() {
        let label = instance_label(&"A very long title. ".repeat(8), "lab-pc", 5000);
        assert!(label.len() <= 63 && !label.contains('.'), "{label}");
        assert_eq!(
            instance_label("Simulated microscope", "lab-pc", 5000),
            "Simulated microscope on lab-pc:5000"
        );
    }
}
