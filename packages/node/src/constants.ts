/** Protocol ids, timeouts and limits. Each value says why it is what it is. */

/** The tunnel protocol; versioned so an incompatible change gets a new id. */
export const TUNNEL_PROTOCOL = '/punchgate/tunnel/1.0.0'

/** UDP datagrams, one stream per local sender; a protocol of its own so an older peer refuses it instead of misreading it as TCP. */
export const UDP_PROTOCOL = '/punchgate/udp/1.0.0'

/** Our own Kademlia protocol id keeps the Punchgate mesh apart from the public IPFS DHT. */
export const DHT_PROTOCOL = '/punchgate/kad/1.0.0'

/** A handshake frame larger than this is hostile or broken: the request is a name, the reply a reason. */
export const MAX_FRAME_BYTES = 4096

/** A peer that has not finished the handshake by then is dropped, so it cannot hold a stream open for free. */
export const HANDSHAKE_TIMEOUT_MS = 10_000

/** Connecting to an exposed target on the server side; a local service that takes longer is as good as down. */
export const TARGET_CONNECT_TIMEOUT_MS = 5_000

/** How long an accepted local TCP connection waits for its tunnel to become active before it is closed. */
export const PENDING_CONNECTION_TIMEOUT_MS = 30_000

/** Provider records live for 24 h in kad-dht; re-announce well inside that and after every restart. */
export const REPUBLISH_INTERVAL_MS = 5 * 60_000

/** Lookup retry: exponential backoff with jitter between these bounds. */
export const RETRY_MIN_MS = 1_000
export const RETRY_MAX_MS = 30_000

/** Bootstrap redial backoff bounds. */
export const BOOTSTRAP_RETRY_MIN_MS = 1_000
export const BOOTSTRAP_RETRY_MAX_MS = 60_000
/**
 * The bound while the node is out of the mesh (no bootstrap connected, no relay slot): it
 * is of no use until one answers, and a restarted bootstrap is back within seconds (with
 * the 60 s bound, one that took 3 s to restart was dialled again only 7-15 s after it left).
 */
export const BOOTSTRAP_RETRY_OUT_OF_MESH_MAX_MS = 4_000

/** One dial to one provider; several providers are tried in order, so keep each short. */
export const DIAL_TIMEOUT_MS = 10_000

/**
 * How long a tunnel waits for round 1 of hole punching before it goes live on the relay; the
 * round goes on behind it, and later connections go direct if it succeeds. Rounds that
 * succeed take 0.1-0.4 s in the NAT lab (1 s at most under load); waiting longer cost every
 * relayed tunnel its first 5 s. A round that looks hopeless, or fails, ends the wait sooner
 * (docs/nat-traversal.md "Waiting for the punch").
 */
export const DIRECT_UPGRADE_WAIT_MS = 1_000

/** Hole punching: our own coordination protocol over the relayed connection (docs/protocol.md). */
export const PUNCH_PROTOCOL = '/punchgate/punch/1.0.0'

/** Our UDP socket's NAT mapping, told over an authenticated stream (holepunch/udp-observe.ts). */
export const UDP_OBSERVE_PROTOCOL = '/punchgate/udp-observe/1.0.0'

/**
 * libp2p's Direct Connection Upgrade through Relay (specs: relay/DCUtR.md): the same round on
 * the standard wire, so plain libp2p peers can punch with us (holepunch/dcutr-wire.ts).
 */
export const DCUTR_PROTOCOL = '/libp2p/dcutr'

/** ObsAddrs read from one DCUtR message; the rest are skipped unparsed (the first 8 usable are kept). */
export const MAX_DCUTR_ADDRS = 64

/**
 * One punch round. Long enough for Linux's SYN retransmits at 1 s and 3 s: a first SYN that
 * a NAT dropped because the other side's mapping did not exist yet gets a second chance.
 */
export const PUNCH_ATTEMPT_TIMEOUT_MS = 5_000

/** Rounds per peer before it stays on the relay; later rounds run in the background. */
export const PUNCH_MAX_ATTEMPTS = 3

/** Delay before a background punch round after the second, doubled each round. */
export const PUNCH_RETRY_MS = 5_000

/**
 * Delay before round 2, right after a failed first round: one lost round (a first round on a
 * fresh path, docs/nat-traversal.md "Round 1 on a fresh path") must not decide the path.
 */
export const PUNCH_QUICK_RETRY_MS = 1_000

/** Candidate addresses sent in a punch exchange; more is noise (and a reflection vector). */
export const MAX_PUNCH_CANDIDATES = 8

/**
 * Punch rounds the responder answers per peer per minute; later ones are reset without
 * dialing. A tunnel's initiator runs at most 3 rounds 5 s and 10 s apart, and 3 more after
 * a lost direct connection: 10 never stops a real tunnel and caps what a peer can make us dial.
 */
export const PUNCH_ROUNDS_PER_MINUTE = 10

/** Refused punch requests logged per peer per minute (and in all): the rest are counted silently. */
export const PUNCH_REFUSALS_LOGGED_PER_MINUTE = 3
export const PUNCH_REFUSALS_LOGGED_TOTAL_PER_MINUTE = 30

/**
 * Tunnels open one stream per local TCP connection; libp2p's defaults (32 in, 64 out
 * per connection) would cap concurrent tunnelled connections far below what ssh/http need.
 */
export const MAX_TUNNEL_STREAMS = 1024

/**
 * On SIGINT/SIGTERM, open tunnel connections get this long to finish before they are cut.
 * `docker stop` sends SIGKILL after 10 s: this leaves time to close the swarm within that.
 */
export const DRAIN_TIMEOUT_MS = 8_000

/** Providers asked for in one lookup. */
export const MAX_PROVIDERS = 8

/**
 * Provider records one lookup reads at most while it looks for a trusted provider past
 * MAX_PROVIDERS (sybils must not hide it; a flood of records must not keep it reading).
 */
export const MAX_PROVIDER_RECORDS = 64

/**
 * UDP sessions (local senders) one UDP tunnel keeps at once. Each holds a stream, and
 * streams per connection are capped at MAX_TUNNEL_STREAMS; a resolver that uses a new
 * source port per query would otherwise exhaust them. The least recently active goes first.
 */
export const MAX_UDP_SESSIONS = 512

/** Datagrams from a new sender held while its session's handshake is in flight (a DNS query must not be lost to it). */
export const UDP_QUEUE_DATAGRAMS = 64

/** A sender whose session was refused has its datagrams dropped this long, instead of a new request per datagram. */
export const UDP_REJECT_HOLD_MS = 5_000

/** Splice relay: the relay hands out one-time tokens over this protocol (docs/splice.md). */
export const SPLICE_PROTOCOL = '/punchgate/splice/1.0.0'

/** One splice request, from ask to upgraded connection; on failure the tunnel stays on the circuit. */
export const SPLICE_TIMEOUT_MS = 10_000

/** How long a splice token waits for its socket, and that socket for its partner's. */
export const SPLICE_PAIR_TIMEOUT_MS = 10_000

/** With a direct connection to a peer, how often a spliced one still carrying tunnel streams is looked at again, to be closed once idle. */
export const SPLICE_RETIRE_CHECK_MS = 30_000

/**
 * Provider records a public node keeps for one publishing peer. A Punchgate node publishes
 * one record per service name it exposes, so 64 is far above honest use.
 */
export const MAX_PROVIDER_RECORDS_KEPT_PER_PEER = 64

/**
 * Provider records a public node keeps in all. Each costs about 400 bytes of heap in
 * libp2p's in-memory datastore (measured: 100,000 records, 40 MB), and every lookup scans
 * every key of that store (150 ms per lookup at 100,000): 10,000 is 4 MB and ~15 ms.
 */
export const MAX_PROVIDER_RECORDS_KEPT = 10_000

/** Refused provider records are logged once per this interval, with a count, not once per record. */
export const PROVIDER_REFUSED_LOG_MS = 60_000

/**
 * Relay reservations a private node holds at once (docs/ARCHITECTURE.md "Roles"): two, so the
 * relay path and its provider records' circuit addresses survive the loss of one public node.
 */
export const MAX_RELAY_RESERVATIONS = 2

/** A public node tells its peers which other public nodes it verified reachable (docs/protocol.md). */
export const RELAYS_PROTOCOL = '/punchgate/relays/1.0.0'

/** Public nodes one `/punchgate/relays/1.0.0` answer lists: a private node needs two relays, a few more cover losses. */
export const MAX_VOUCHED_RELAYS = 8

/** Addresses listed per public node in that answer (a public node has one or two per transport). */
export const MAX_VOUCHED_ADDRS = 4

/** One relays request per peer per this interval; a private node asks when it joins and when it runs short of relays. */
export const RELAYS_ASK_INTERVAL_MS = 10_000

/** A relays request and its answer, on both sides. */
export const RELAYS_TIMEOUT_MS = 5_000

/**
 * While it holds fewer than MAX_RELAY_RESERVATIONS, a private node asks its bootstraps for relays again this often
 * (a node that just turned public is vouched for once its bootstrap has its identify push, ~1-2 s later).
 */
export const RELAYS_REFRESH_MS = 15_000

/** The reach probe (reachability/, docs/protocol.md): "can you reach me?", asked of a public node. */
export const REACH_PROTOCOL = '/punchgate/reach/1.0.0'

/** TCP listen ports one probe request may name: a node listens on one or two (IPv4, IPv6). */
export const REACH_MAX_PORTS = 2

/** One probe dial-back: a reachable port answers a TCP SYN within a round trip or two. */
export const REACH_DIAL_TIMEOUT_MS = 3_000

/** One probe request per peer per this interval: a node re-probes every REACH_REPROBE_MS. */
export const REACH_ASK_INTERVAL_MS = 30_000

/** Probe requests per remote IP per REACH_ASK_INTERVAL_MS: fresh peer ids from one host buy no more dial-backs to it. */
export const REACH_ASKS_PER_IP = 4

/** Probe dial-backs in flight on a public node, whoever asked: a flood of askers cannot open more sockets. */
export const REACH_MAX_DIALS_IN_FLIGHT = 8

/** A probe stream, request to answer, on both sides: the dial-backs (REACH_DIAL_TIMEOUT_MS) run inside it. */
export const REACH_TIMEOUT_MS = 10_000

/** A node with --role auto and a bootstrap asks again this often (and when its observed addresses change). */
export const REACH_REPROBE_MS = 5 * 60_000

/** A verified peer counts as public this long after its last successful probe (three re-probes). */
export const REACH_VERIFIED_TTL_MS = 3 * REACH_REPROBE_MS

/** Verified public peers a public node remembers: the oldest is forgotten first. */
export const REACH_MAX_VERIFIED = 256

/**
 * Port mapping (portmap/): the lease asked of the router. An hour, renewed halfway: a node
 * that dies without deleting its mapping leaves it open at most that long. UPnP-IGD leases
 * are an hour at least (the library raises shorter ones).
 */
export const PORTMAP_LIFETIME_S = 3600

/** Finding the router's NAT-PMP or UPnP-IGD service: it is on our LAN, so it answers fast or not at all. */
export const PORTMAP_DISCOVER_TIMEOUT_MS = 3_000

/** One map or unmap request to a router that has answered before. */
export const PORTMAP_REQUEST_TIMEOUT_MS = 5_000

/** No router answered, or every mapping was lost: ask again this much later (a router may be rebooted or reconfigured). */
export const PORTMAP_RETRY_MS = 10 * 60_000

/** A failing renewal is retried no sooner than this, and always before the lease runs out. */
export const PORTMAP_MIN_RENEW_MS = 30_000

/** Deleting the mappings at stop: shutdown waits no longer for a router. */
export const PORTMAP_STOP_TIMEOUT_MS = 1_500

/**
 * Dialing a peer: its known addresses get this head start, then the relays we know are
 * tried beside them. A provider behind NAT often has addresses that swallow SYNs (its LAN
 * address, a mapping its NAT filters): libp2p tries them one after another for up to 6 s
 * each, and waiting them out held a by-name tunnel's recovery after a relay loss well past
 * DIAL_TIMEOUT_MS.
 */
export const RELAY_DIAL_HEAD_START_MS = 1_000

/** How long after a direct connection died of silence (liveness.ts) dials to that peer try the relays at once. */
export const PATH_DIED_RECENTLY_MS = 60_000

/**
 * Dialing a peer: once every relay has said no (the peer holds no slot: down or restarting),
 * how much longer its direct addresses are given. A SYN that gets no answer for 2 s (Linux
 * retransmits at 1 s) is to a stale mapping; the tunnel looks the peer up again sooner.
 */
export const DIRECT_AFTER_RELAYS_MS = 2_000

/**
 * Liveness checks on a live tunnel's connections (liveness.ts): a ping every second, and a
 * connection that leaves one unanswered for 3 s is taken for dead. After an address change
 * the tunnel's echo stalled 14-35 s until libp2p's monitor (every 10 s) noticed (issue 19,
 * target 5 s); 3 s leaves room for a loaded machine's event-loop delays.
 */
export const LIVENESS_INTERVAL_MS = 1_000
export const LIVENESS_TIMEOUT_MS = 3_000
