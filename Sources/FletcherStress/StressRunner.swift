import FletcherDomain
import FletcherJSON
import Foundation
import Histogram
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// `fletcher stress`: replays a realistic workload against a running server and reports
/// throughput and latency per request kind.
public enum StressRunner {
    /// Runs the whole test: log in, submit the plans (the set-up, reported apart), then the
    /// scenario until the duration or request count is reached.
    public static func run(_ options: StressOptions, progress: @escaping @Sendable (String) -> Void) async throws -> StressReport {
        let recorder = StressRecorder()
        let client = try LoadClient(base: options.url, service: options.service, key: options.key, recorder: recorder)
        do {
            let report = try await run(options, client: client, recorder: recorder, progress: progress)
            await client.shutdown()
            return report
        } catch {
            await client.shutdown()
            throw error
        }
    }

    private static func run(
        _ options: StressOptions, client: LoadClient, recorder: StressRecorder, progress: @escaping @Sendable (String) -> Void
    ) async throws -> StressReport {
        try await client.authenticate()
        let runName = String(UUID().uuidString.prefix(8)).lowercased()
        let plans = (0..<options.plans).map { StressPlan(run: runName, index: $0) }

        // Set-up: submit every plan, `concurrency` at a time.
        let setupStarted = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<min(options.concurrency, plans.count) {
                group.addTask {
                    for index in stride(from: worker, to: plans.count, by: options.concurrency) {
                        let answer = await client.send("submit", .POST, "/api/plan", json: plans[index].submission, authenticated: true, measured: false)
                        guard answer.ok else {
                            throw StressError("cannot submit a plan: \(answer.error ?? "HTTP \(answer.status)")")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let setup = ContinuousClock.now - setupStarted
        progress("submitted \(plans.count) plans in \(format(setup))")

        let board = TriggerBoard(recorder: recorder)
        let webhooks = WebhookBoard(recorder: recorder)
        var listeners: [Listener] = []
        if options.scenario == .dispatch {
            listeners.append(try await startPlatform(port: options.platformPort, board: board))
        }
        if let port = options.webhookPort {
            listeners.append(try await startWebhookReceiver(port: port, board: webhooks))
        }
        let stop = StopCondition(options: options)
        let writeLog = try options.writeLog.map(WriteLog.init(path:))
        defer { writeLog?.close() }
        let started = ContinuousClock.now
        let reporter = Task {
            var last = (ContinuousClock.now, 0)
            while !Task.isCancelled {
                try? await Task.sleep(for: options.progressInterval)
                if Task.isCancelled { return }
                let now = ContinuousClock.now
                let count = recorder.measured.load(ordering: .relaxed)
                let rate = Double(count - last.1) / seconds(now - last.0)
                progress(
                    "[\(format(now - started))] \(count) requests, \(Int(rate))/s now, "
                        + "\(recorder.measuredFailures.load(ordering: .relaxed)) failed")
                last = (now, count)
            }
        }
        await withDiscardingTaskGroup { group in
            for worker in 0..<options.concurrency {
                group.addTask {
                    await Worker(
                        index: worker, options: options, client: client, board: board, webhooks: webhooks, stop: stop, writeLog: writeLog,
                        plans: plans.isEmpty ? [] : stride(from: worker % plans.count, to: plans.count, by: options.concurrency).map { plans[$0] },
                        allPlans: plans
                    ).run()
                }
            }
        }
        let elapsed = ContinuousClock.now - started
        reporter.cancel()
        // Webhooks of the last successes are still on their way: wait for them (their latency counts).
        let missingWebhooks = options.webhookPort == nil ? 0 : await webhooks.drain(timeout: .seconds(30))
        for listener in listeners { await listener.stop() }
        return StressReport(
            options: options, plans: plans.count, setup: setup, elapsed: elapsed, kinds: recorder.snapshot,
            measured: recorder.measured.load(ordering: .relaxed), failed: recorder.measuredFailures.load(ordering: .relaxed),
            failures: recorder.failureSamples, unexpectedTriggers: board.unexpected.load(ordering: .relaxed),
            unexpectedWebhooks: webhooks.unexpected.load(ordering: .relaxed), missingWebhooks: missingWebhooks)
    }

    /// The stand-in compute platform: accepts every trigger (202, with a run id) and tells the board.
    private static func startPlatform(port: Int, board: TriggerBoard) async throws -> Listener {
        try await listen(port: port, path: "/jobs") { _, object in
            if let dataset = object["dataset_id"] as? String, let product = object["data_product_id"] as? String {
                board.arrived(TriggerBoard.key(dataset, product))
            }
            return Response(
                status: .accepted, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"run_id": "\#(UUID().uuidString.lowercased())"}"#)))
        }
    }

    /// The webhook endpoint (`WEBHOOKS` entry `{"url": "http://127.0.0.1:{port}/hooks", "format":
    /// "standard", …}`): takes every delivery (204) and tells the board of each product's success.
    private static func startWebhookReceiver(port: Int, board: WebhookBoard) async throws -> Listener {
        try await listen(port: port, path: "/hooks") { headers, object in
            if object["type"] as? String == "data_product.succeeded", let id = headers.first(where: { $0.name.canonicalName == "webhook-id" })?.value,
                let event = object["data"] as? [String: Any], let dataset = event["dataset_id"] as? String,
                let product = event["data_product_id"] as? String
            {
                board.arrived(id: id, key: TriggerBoard.key(dataset, product))
            }
            return Response(status: .noContent)
        }
    }

    /// A stand-in HTTP service on `port` whose `POST path` answers what `answer` makes of the
    /// request's headers and JSON object body.
    private static func listen(
        port: Int, path: RouterPath, answer: @escaping @Sendable (HTTPFields, [String: Any]) -> Response
    ) async throws -> Listener {
        let router = Router()
        router.post(path) { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
            return answer(request.headers, object)
        }
        var logger = Logger(label: "stress-listener")
        logger.logLevel = .error
        let ready = AsyncStream<Void>.makeStream()
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "fletcher-stress"),
            onServerRunning: { _ in ready.continuation.yield() }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let task = Task { try await group.run() }
        for await _ in ready.stream { break }
        return Listener(group: group, task: task)
    }

    /// A running stand-in service.
    struct Listener {
        let group: ServiceGroup
        let task: Task<Void, any Error>

        /// Shuts it down gracefully and waits until it has.
        func stop() async {
            await group.triggerGracefulShutdown()
            _ = try? await task.value
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func format(_ duration: Duration) -> String { String(format: "%.1f s", seconds(duration)) }
}

/// When the measured phase ends: after a duration or a number of requests, whichever comes first;
/// and, at a set rate, when each request may go.
final class StopCondition: Sendable {
    let started = ContinuousClock.now
    let deadline: ContinuousClock.Instant?
    let limit: Int?
    /// The time between two requests' slots, when a rate is set.
    let interval: Duration?
    private let counted = Atomic<Int>(0)
    private let slots = Atomic<Int>(0)

    init(options: StressOptions) {
        deadline = options.duration.map { [started] in started + $0 }
        limit = options.requests
        interval = options.rate.map { .nanoseconds(Int64(1e9 / $0)) }
    }

    /// Takes one request from the budget, first waiting for its slot at a set rate (the slots are
    /// spread evenly from the start, whichever worker takes one); false once the run is over.
    func proceed() async -> Bool {
        if let interval {
            let due = started + interval * slots.add(1, ordering: .relaxed).oldValue
            if let deadline, due >= deadline { return false }
            try? await Task.sleep(until: due, clock: .continuous)
        }
        if let deadline, ContinuousClock.now >= deadline { return false }
        if let limit { return counted.add(1, ordering: .relaxed).newValue <= limit }
        return true
    }
}

/// One simulated client: drives its share of the plans, one request at a time.
struct Worker: Sendable {
    let index: Int
    let options: StressOptions
    let client: LoadClient
    let board: TriggerBoard
    let webhooks: WebhookBoard
    let stop: StopCondition
    let writeLog: WriteLog?
    let plans: [StressPlan]
    let allPlans: [StressPlan]

    func run() async {
        switch options.scenario {
        case .reads: await readPlans()
        case .products: await listProducts()
        case .mixed, .updates, .dispatch: await drivePlans()
        }
    }

    private func readPlans() async {
        guard !allPlans.isEmpty else { return }
        var next = index % allPlans.count
        while await stop.proceed() {
            _ = await client.send("read plan", .GET, "/api/plan/\(allPlans[next].id)")
            next = (next + options.concurrency) % allPlans.count
        }
    }

    /// The list's filters in turn, on plans of this run for the dataset filter; each query's
    /// second page follows it (its cursor read from the answer).
    private func listProducts() async {
        guard !allPlans.isEmpty else { return }
        var sinceBytes: [UInt8] = []
        JSONBytes.writeDate(Date().addingTimeInterval(-3600), to: &sinceBytes)
        let since = String(decoding: sinceBytes, as: UTF8.self)
        let queries: [(kind: String, query: (StressPlan) -> String)] = [
            ("products", { _ in "" }),
            ("products failed", { _ in "state=failed" }),
            ("products queued,running", { _ in "state=queued,running" }),
            ("products dbxaas", { _ in "compute=dbxaas" }),
            ("products failed cams", { _ in "state=failed&compute=cams" }),
            ("products of a dataset", { plan in "dataset_id=\(plan.id)" }),
            ("products since", { _ in "since=\(since)" }),
        ]
        var next = index
        while true {
            let (kind, query) = queries[next % queries.count]
            let plan = allPlans[next % allPlans.count]
            guard await stop.proceed() else { return }
            let filter = query(plan)
            let path = "/api/data_products?limit=100" + (filter.isEmpty ? "" : "&" + filter)
            let answer = await client.send(kind, .GET, path)
            if answer.ok, let body = answer.body, case .object(let page) = try? JSONValue(parsing: String(buffer: body)).node,
                case .string(let cursor)? = page["next_cursor"]
            {
                guard await stop.proceed() else { return }
                _ = await client.send(kind + " page 2", .GET, path + "&cursor=\(cursor)")
            }
            next += options.concurrency
        }
    }

    private func drivePlans() async {
        var drivers = plans.map(PlanDriver.init)
        guard !drivers.isEmpty else { return }
        var updates = 0
        while true {
            for position in drivers.indices {
                guard await stop.proceed() else { return }
                let plan = drivers[position].plan
                switch drivers[position].next {
                case .update(let name, let state):
                    if options.scenario == .dispatch, state == "running", drivers[position].states[name] == "queued" {
                        // Triggered by Fletcher: the platform starts it once the trigger is in.
                        _ = await board.waitForArrival(TriggerBoard.key(plan.id, plan.id(name)), timeout: .seconds(30))
                    }
                    if options.scenario == .dispatch, state == "success" {
                        for child in drivers[position].readied(bySuccessOf: name) { board.expect(TriggerBoard.key(plan.id, plan.id(child))) }
                    }
                    let succeeding = options.webhookPort != nil && state == "success" ? TriggerBoard.key(plan.id, plan.id(name)) : nil
                    if let succeeding { webhooks.sending(succeeding) }
                    let sent = Date()
                    let answer = await client.send(
                        "update", .PUT, "/api/data_product/\(plan.id)/update", json: .array([.object(["id": .string(plan.id(name)), "state": .string(state)])]),
                        authenticated: true)
                    writeLog?.record(
                        kind: "update", datasetId: plan.id, productIds: [plan.id(name)], state: state, answer: answer, sent: sent, answered: Date())
                    if let succeeding, !answer.ok { webhooks.refused(succeeding) }
                    await absorb(answer, into: &drivers[position])
                    updates += 1
                    if options.scenario == .mixed, updates % 4 == 0 {
                        guard await stop.proceed() else { return }
                        _ = await client.send("index page", .GET, "/")
                        guard await stop.proceed() else { return }
                        let search = plan.label.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                        _ = await client.send("search", .GET, "/component/plan_search?search_by=\(search)&page=0")
                        guard await stop.proceed() else { return }
                        _ = await client.send("plan page", .GET, "/plan/\(plan.id)")
                    }
                case .restart:
                    let sent = Date()
                    let answer = await client.send(
                        "clear", .PUT, "/api/data_product/\(plan.id)/clear", json: .array(StressPlan.sources.map { .string(plan.id($0)) }),
                        authenticated: true)
                    writeLog?.record(
                        kind: "clear", datasetId: plan.id, productIds: StressPlan.sources.map { plan.id($0) }, state: nil, answer: answer,
                        sent: sent, answered: Date())
                    await absorb(answer, into: &drivers[position])
                }
            }
        }
    }

    /// Takes the answered plan's states; after a failure, reads the plan again.
    private func absorb(_ answer: LoadClient.Answer, into driver: inout PlanDriver) async {
        if answer.ok {
            driver.absorb(answer.body)
        } else {
            let fresh = await client.send("read plan", .GET, "/api/plan/\(driver.plan.id)", measured: false)
            driver.absorb(fresh.body)
        }
    }
}
