import FletcherDomain
import FletcherJSON
import Foundation
import Histogram
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
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
        var platform: Task<Void, any Error>?
        if options.scenario == .dispatch {
            platform = try await startPlatform(port: options.platformPort, board: board)
        }
        let stop = StopCondition(options: options)
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
                        index: worker, options: options, client: client, board: board, stop: stop,
                        plans: plans.isEmpty ? [] : stride(from: worker % plans.count, to: plans.count, by: options.concurrency).map { plans[$0] },
                        allPlans: plans
                    ).run()
                }
            }
        }
        let elapsed = ContinuousClock.now - started
        reporter.cancel()
        platform?.cancel()
        _ = try? await platform?.value
        return StressReport(
            options: options, plans: plans.count, setup: setup, elapsed: elapsed, kinds: recorder.snapshot,
            measured: recorder.measured.load(ordering: .relaxed), failed: recorder.measuredFailures.load(ordering: .relaxed),
            failures: recorder.failureSamples, unexpectedTriggers: board.unexpected.load(ordering: .relaxed))
    }

    /// The stand-in compute platform: accepts every trigger (202, with a run id) and tells the board.
    private static func startPlatform(port: Int, board: TriggerBoard) async throws -> Task<Void, any Error> {
        let router = Router()
        router.post("/jobs") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            if let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                let dataset = object["dataset_id"] as? String, let product = object["data_product_id"] as? String
            {
                board.arrived(TriggerBoard.key(dataset, product))
            }
            return Response(
                status: .accepted, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"run_id": "\#(UUID().uuidString.lowercased())"}"#)))
        }
        var logger = Logger(label: "stress-platform")
        logger.logLevel = .error
        let ready = AsyncStream<Void>.makeStream()
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "fletcher-stress"),
            onServerRunning: { _ in ready.continuation.yield() }, logger: logger)
        let task = Task { try await application.runService(gracefulShutdownSignals: []) }
        for await _ in ready.stream { break }
        return task
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func format(_ duration: Duration) -> String { String(format: "%.1f s", seconds(duration)) }
}

/// When the measured phase ends: after a duration or a number of requests, whichever comes first.
final class StopCondition: Sendable {
    let deadline: ContinuousClock.Instant?
    let limit: Int?
    private let counted = Atomic<Int>(0)

    init(options: StressOptions) {
        deadline = options.duration.map { ContinuousClock.now + $0 }
        limit = options.requests
    }

    /// Takes one request from the budget; false once the run is over.
    func proceed() -> Bool {
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
    let stop: StopCondition
    let plans: [StressPlan]
    let allPlans: [StressPlan]

    func run() async {
        switch options.scenario {
        case .reads: await readPlans()
        case .mixed, .updates, .dispatch: await drivePlans()
        }
    }

    private func readPlans() async {
        guard !allPlans.isEmpty else { return }
        var next = index % allPlans.count
        while stop.proceed() {
            _ = await client.send("read plan", .GET, "/api/plan/\(allPlans[next].id)")
            next = (next + options.concurrency) % allPlans.count
        }
    }

    private func drivePlans() async {
        var drivers = plans.map(PlanDriver.init)
        guard !drivers.isEmpty else { return }
        var updates = 0
        while true {
            for position in drivers.indices {
                guard stop.proceed() else { return }
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
                    let answer = await client.send(
                        "update", .PUT, "/api/data_product/\(plan.id)/update", json: .array([.object(["id": .string(plan.id(name)), "state": .string(state)])]),
                        authenticated: true)
                    await absorb(answer, into: &drivers[position])
                    updates += 1
                    if options.scenario == .mixed, updates % 4 == 0 {
                        guard stop.proceed() else { return }
                        _ = await client.send("index page", .GET, "/")
                        guard stop.proceed() else { return }
                        let search = plan.label.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                        _ = await client.send("search", .GET, "/component/plan_search?search_by=\(search)&page=0")
                        guard stop.proceed() else { return }
                        _ = await client.send("plan page", .GET, "/plan/\(plan.id)")
                    }
                case .restart:
                    let answer = await client.send(
                        "clear", .PUT, "/api/data_product/\(plan.id)/clear", json: .array(StressPlan.sources.map { .string(plan.id($0)) }),
                        authenticated: true)
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
