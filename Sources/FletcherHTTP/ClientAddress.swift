public import Hummingbird
public import NIOCore

/// Where a request comes from, as the login throttle tells clients apart: an IPv4 address (also
/// when it reaches an IPv6 socket as `::ffff:a.b.c.d`), or the first 64 bits of an IPv6 address —
/// one host is usually given a whole /64, so counting its addresses apart would count nothing.
/// Requests whose peer address is not known (a Unix socket, a router without
/// `ClientRequestContext`) share one `unknown` address.
public struct ClientAddress: Sendable, Hashable, CustomStringConvertible {
    public let description: String

    public static let unknown = ClientAddress(description: "unknown")

    private init(description: String) { self.description = description }

    public init(_ address: SocketAddress?) {
        // The address's bytes sit at the same offsets in `sockaddr_in` (4) and `sockaddr_in6` (8) on
        // Linux and Darwin.
        switch address {
        case .v4(let v4)?:
            self.init(ipv4: withUnsafeBytes(of: v4.address) { Array($0[4..<8]) })
        case .v6(let v6)?:
            let bytes = withUnsafeBytes(of: v6.address) { Array($0[8..<24]) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                self.init(ipv4: Array(bytes[12...]))
            } else {
                let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                self.init(description: groups.joined(separator: ":") + "::/64")
            }
        default:
            self = .unknown
        }
    }

    private init(ipv4 bytes: [UInt8]) {
        self.init(description: bytes.map(String.init).joined(separator: "."))
    }

    /// The client of the request being served, set by `ClientAddressMiddleware`.
    @TaskLocal public static var current: ClientAddress = .unknown
}

/// A request context that keeps the peer address of the request's connection.
public struct ClientRequestContext: RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Sets `ClientAddress.current` from the connection's peer address for the handlers behind it (the
/// generated handlers see no request context). Proxies' forwarding headers are not read: any client
/// can write them.
public struct ClientAddressMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    public init() {}

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        try await ClientAddress.$current.withValue(ClientAddress(context.remoteAddress)) {
            try await next(request, context)
        }
    }
}
