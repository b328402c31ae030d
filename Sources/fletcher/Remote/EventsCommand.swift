import ArgumentParser
import FletcherClient
import Foundation
import OpenAPIRuntime

/// `fletcher events [--follow]`: the event feed.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print events, oldest first; with --follow, then each new one as it is written.",
        discussion: "With --json, one event's JSON per line.")
    @OptionGroup var remote: RemoteOptions
    @Option(help: "Only these types or patterns (data_product.*; repeatable or comma-separated).") var type: [String] = []
    @Option(help: "Only the events of this dataset.") var dataset: String?
    @Option(help: "Start after this cursor (an event's cursor); default: the first event, or with --follow only new ones.")
    var after: String?
    @Flag(help: "Keep printing events as they are written, until interrupted.") var follow = false
    @Option(help: "Without --follow, at most this many.") var limit = 100

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
    }

    func run() async throws {
        try await remote {
            // A followed stream runs until interrupted.
            let client = remote.connection(timeout: follow ? .seconds(366 * 86_400) : .seconds(60)).client
            let types = type.isEmpty ? nil : type
            if follow {
                let stream = try await client.streamEvents(query: .init(after: after, _type: types, datasetId: dataset))
                let body = try stream.ok.body.textEventStream
                for try await message in body.asDecodedServerSentEventsWithJSONData(of: Components.Schemas.Event.self, decoder: FletcherConnection.jsonDecoder()) {
                    guard let event = message.data else { continue }
                    try printEvent(event)
                }
                return
            }
            var cursor = after
            var printed = 0
            while printed < limit {
                let page = try await client.listEvents(
                    query: .init(after: cursor, _type: types, datasetId: dataset, limit: min(1000, limit - printed))
                ).ok.body.json
                for event in page.events { try printEvent(event) }
                printed += page.events.count
                if page.events.isEmpty { break }
                cursor = page.next
            }
        }
    }

    private func printEvent(_ event: Components.Schemas.Event) throws {
        if remote.json {
            let encoder = FletcherConnection.jsonEncoder()
            say(String(decoding: try encoder.encode(event), as: UTF8.self))
        } else {
            let data = (try? JSONEncoder().encode(event.data)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            say([format(event.time), event._type.rawValue, event.datasetId ?? "-", event.dataProductId ?? "-", data].joined(separator: "  "))
        }
    }
}
