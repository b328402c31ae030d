import ArgumentParser
import AsyncHTTPClient
import NIOCore
import FletcherClient
import Foundation
import OpenAPIRuntime

/// Where the subcommands that talk to a running server find it and log in: flags, else
/// `FLETCHER_URL`, `FLETCHER_SERVICE`, `FLETCHER_KEY`.
struct RemoteOptions: ParsableArguments {
    @Option(help: "The server's base URL (FLETCHER_URL; default http://127.0.0.1:3000).")
    var url: String?

    @Option(help: "The service to log in as (FLETCHER_SERVICE).")
    var service: String?

    @Option(help: "Its key (FLETCHER_KEY, which other users cannot read in the process list, unlike this flag).")
    var key: String?

    @Flag(help: "Print the server's answer as JSON rather than a table.")
    var json = false

    static let environment = ProcessInfo.processInfo.environment

    func validate() throws {
        let base = url ?? Self.environment["FLETCHER_URL"] ?? "http://127.0.0.1:3000"
        guard let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw ValidationError("the server URL '\(base)' is not an http(s) URL")
        }
    }

    /// The connection, throwing `FletcherRefusal` for every answer but 2xx; each request may take
    /// `timeout` (a followed event stream: as long as it runs).
    func connection(timeout: Duration = .seconds(60)) -> FletcherConnection {
        let base = URL(string: url ?? Self.environment["FLETCHER_URL"] ?? "http://127.0.0.1:3000")!
        var credentials: FletcherConnection.Credentials?
        if let service = service ?? Self.environment["FLETCHER_SERVICE"], let key = key ?? Self.environment["FLETCHER_KEY"] {
            credentials = .init(service: service, key: key)
        }
        return FletcherConnection(url: base, credentials: credentials, httpClient: cliHTTPClient, timeout: timeout, refusalsThrow: true)
    }
}

/// The subcommands' HTTP client: a server that does not answer a connection is said at once (the
/// shared client tries again until the request's time is up). Never shut down: it lives as long as
/// the process.
let cliHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.retryConnectionEstablishment = false
    configuration.timeout.connect = .seconds(10)
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}()

/// The exit codes of the subcommands that talk to a server, by what went wrong.
enum RemoteExit: Int32 {
    /// Something else: the server failed (5xx), or answered what the API does not document.
    case failed = 1
    /// No credentials, or the server refused them (401).
    case authentication = 3
    /// No such dataset or data product (404).
    case notFound = 4
    /// Refused: the service lacks the role (403), a report for another try or a guard (409), a cycle (422).
    case refused = 5
    /// The request is wrong (400, 413): a file that is no plan, a bad filter.
    case badRequest = 6
    /// The server or its database cannot be reached now (503, no connection): try again later.
    case unavailable = 7

    static func of(_ status: Int) -> RemoteExit {
        switch status {
        case 401: .authentication
        case 404: .notFound
        case 403, 409, 422: .refused
        case 400, 413: .badRequest
        case 429, 503: .unavailable
        default: .failed
        }
    }
}

extension AsyncParsableCommand {
    /// Runs `work`, printing what went wrong to standard error and exiting with its `RemoteExit`.
    func remote(_ work: () async throws -> Void) async throws {
        do {
            try await work()
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch let error as CleanExit {
            throw error
        } catch {
            // The generated client wraps what its middlewares and transport throw.
            let cause = (error as? ClientError)?.underlyingError ?? error
            switch cause {
            case let refusal as FletcherRefusal:
                let hint = refusal.status == 401 ? "; log in with FLETCHER_SERVICE and FLETCHER_KEY (or --service and --key)" : ""
                throw Self.fail(RemoteExit.of(refusal.status), "\(refusal.detail) (HTTP \(refusal.status))\(hint)")
            case let refusal as FletcherClientError:
                throw Self.fail(.authentication, refusal.description)
            case let decoding as DecodingError:
                throw Self.fail(.failed, "the server's answer is not what the API describes: \(decoding)")
            default:
                throw Self.fail(.unavailable, "cannot reach the server: \(cause)")
            }
        }
    }

    static func fail(_ exit: RemoteExit, _ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("fletcher: \(message)\n".utf8))
        return ExitCode(exit.rawValue)
    }
}

/// Writes a line to standard output at once (unbuffered: `events --follow` into a pipe shows each
/// event as it comes).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Prints rows as a table: columns padded to their widest cell, a header first.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    say(line(header))
    for row in rows { say(line(row)) }
}

/// Prints a value the API answered, as JSON.
func printJSON(_ value: some Encodable) throws {
    let encoder = FletcherConnection.jsonEncoder()
    encoder.outputFormatting.insert(.prettyPrinted)
    say(String(decoding: try encoder.encode(value), as: UTF8.self))
}
