import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
@testable import FletcherWeb
import Foundation
import HTTPTypes
import Testing

@Suite("Tries and timers on the pages")
struct TriesPageTests {
    let names = Names()
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func at(_ seconds: Double) -> Date { start.addingTimeInterval(seconds) }

    /// C-AMS retries twice, 30 s apart at first; a job may run a minute; its platform takes cancels.
    static let policy = OrchestrationPolicy(computes: [
        .cams: ComputePolicy(retries: RetryPolicy(max: 2, delay: 30), maxRunning: 60, cancels: true)
    ])

    /// The detail of `id` as the page renders it at `now`, from the story's history and triggers.
    static func detail(_ story: ProductStory, _ id: UUID, now: Date) -> String {
        let product = story.product(id)
        let tries = ProductTries.build(
            product: product, triggers: story.triggers(of: id), events: story.history(of: id), policy: story.policy)
        return ProductView.fragment(
            plan: story.plan, graph: PlanGraph(story.plan), position: story.position(id),
            history: HistoryPage(events: story.history(of: id), nextCursor: nil),
            tries: .init(list: tries, policy: story.policy, now: now), viewer: nil
        ).text
    }

    /// The tries table's rows, newest first, by try number.
    static func tryRows(_ html: String) -> [Int: String] {
        var rows: [Int: String] = [:]
        for match in html.matches(of: /<tr[^>]* data-try="(\d+)">(.*?)<\/tr>/) { rows[Int(match.1)!] = String(match.0) }
        return rows
    }

    @Test func theDetailListsEachTryNewestFirstWithHowItEnded() throws {
        let a = names["a"]
        let (run1, run2, run3) = (UUID(), UUID(), UUID())
        // Given try 1, delivered at the second attempt, reported failed after a minute …
        var story = try ProductStory(PlanFixture(names: names).products("a"), policy: Self.policy, at: Self.at(0))
        let first = try #require(story.product(a).triggerId)
        story.attempt(first, status: 503, at: Self.at(1))
        story.attempt(first, status: 202, at: Self.at(3))
        try story.apply(.update([StateUpdate(id: a, state: .running, runId: run1)]), at: Self.at(5))
        try story.apply(.update([StateUpdate(id: a, state: .failed, runId: run1)]), at: Self.at(65))
        // … retried as try 2, which ran past its minute: timed out, its cancel delivered at the second attempt …
        let retry = try #require(story.product(a).retryAt)
        try story.apply(.fireDue(asOf: retry), at: retry)
        let second = try #require(story.product(a).triggerId)
        story.attempt(second, status: 200, at: retry + 1)
        try story.apply(.update([StateUpdate(id: a, state: .running, runId: run2)]), at: retry + 4)
        let timeout = try #require(story.product(a).timeoutAt)
        try story.apply(.fireDue(asOf: timeout), at: timeout)
        story.attempt(second, status: 503, at: timeout + 1, cancel: true)
        story.attempt(second, status: 200, at: timeout + 3, cancel: true)
        // … and retried again as try 3, running now.
        let again = try #require(story.product(a).retryAt)
        try story.apply(.fireDue(asOf: again), at: again)
        let third = try #require(story.product(a).triggerId)
        story.attempt(third, status: 200, at: again + 1)
        try story.apply(.update([StateUpdate(id: a, state: .running, runId: run3)]), at: again + 2)
        let deadline = try #require(story.product(a).timeoutAt)

        // When the page is drawn 12 s after try 3 was queued
        let html = Self.detail(story, a, now: again + 12)

        // Then it lists three tries, newest first, the current one marked.
        #expect(html.contains("<h3>Tries</h3>"))
        #expect(html.matches(of: /data-try="(\d+)"/).map { Int($0.1)! } == [3, 2, 1])
        let rows = Self.tryRows(html)
        let current = try #require(rows[3])
        #expect(current.hasPrefix("<tr class=\"current\" data-try=\"3\">"))
        #expect(current.contains(third.lowercased) && current.contains(run3.lowercased))
        #expect(current.contains("still running"))
        #expect(current.contains("<td>12 s so far</td>"))
        #expect(current.contains("times out <time datetime=\"\(RFC3339.string(deadline))\""))
        #expect(current.contains("<td class=\"cancel\">—</td>"))
        // Try 2 timed out while running, after its minute, and its cancel reached the platform.
        let timedOut = try #require(rows[2])
        #expect(timedOut.contains(second.lowercased) && timedOut.contains(run2.lowercased))
        #expect(timedOut.contains("<td>\(Layout.time(retry))</td><td>\(Layout.time(retry + 1))</td>"))
        #expect(timedOut.contains("timed out</span> (running, 1 m)"))
        #expect(timedOut.contains("<td>1 m 4 s</td>"))
        #expect(timedOut.contains("timed out: delivered \(Layout.time(timeout + 3)), last HTTP 200"))
        // Try 1 was delivered by its second attempt and failed as reported; nothing was cancelled.
        let failed = try #require(rows[1])
        #expect(failed.contains(first.lowercased) && failed.contains(run1.lowercased))
        #expect(failed.contains("<td>\(Layout.time(Self.at(0)))</td><td>\(Layout.time(Self.at(3)))</td>"))
        #expect(failed.contains("<td class=\"outcome\"><span class=\"badge state failed\">failed</span></td>"))
        #expect(failed.contains("<td>1 m 5 s</td>"))
        #expect(failed.contains("<td class=\"cancel\">—</td>"))
        // The fields: the current try, the limits and where they come from, the armed timeout.
        #expect(html.contains("<dt>Try</dt><dd class=\"try-field\">3 — trigger <code>\(third.lowercased)</code></dd>"))
        #expect(html.contains("retries: up to 2 (C-AMS&#39;s policy), 2 used · queued: no limit · running: at most 1 m (C-AMS&#39;s policy)"))
        #expect(html.contains("<dt>Times out at</dt><dd class=\"timeout-field\">\(Layout.time(deadline))"))
        #expect(html.contains("data-countdown>in 50 s</time>), while running"))
        #expect(!html.contains("<dt>Retry at</dt>"))
        // The history names the try of each change and tells a cancel from a trigger.
        #expect(html.contains("<span class=\"try\">try 2</span>"))
        #expect(html.contains("cancel sent (attempt 2)"))
        #expect(html.contains("trigger sent (attempt 2)"))
        #expect(html.contains("<td>timed out</td>"))
        #expect(html.contains("<td>automatic retry</td>"))
    }

    @Test func aTryTimedOutInTheQueueShowsItsLimitAndThePendingRetry() throws {
        let a = names["a"]
        let policy = OrchestrationPolicy(computes: [.cams: ComputePolicy(retries: RetryPolicy(max: 1, delay: 20), maxQueued: 30)])
        var story = try ProductStory(PlanFixture(names: names).products("a"), policy: policy, at: Self.at(0))
        let first = try #require(story.product(a).triggerId)
        story.attempt(first, status: nil, error: "<b>connection refused</b>", at: Self.at(2))
        try story.apply(.fireDue(asOf: Self.at(30)), at: Self.at(30))
        let product = story.product(a)
        let retry = try #require(product.retryAt)
        #expect(product.state == .failed && product.timeoutAt == nil)

        let html = Self.detail(story, a, now: retry.addingTimeInterval(-12))

        let row = try #require(Self.tryRows(html)[1])
        // The limit is the passback's; the trigger was never delivered (escaped, the platform's error).
        #expect(row.contains("timed out</span> (queued, 30 s)"))
        #expect(row.contains("not yet</span> (1 attempt, last &lt;b&gt;connection refused&lt;/b&gt;)"))
        #expect(row.contains("retry <time datetime=\"\(RFC3339.string(retry))\""))
        #expect(row.contains("<td>30 s</td>"))
        #expect(!html.contains("<b>connection"))
        #expect(html.contains("<dt>Retry at</dt><dd class=\"retry-field\">\(Layout.time(retry))"))
        #expect(html.contains("data-countdown>in 12 s</time>), as try 2"))
        #expect(!html.contains("<dt>Times out at</dt>"))
    }

    @Test func aClearedTryIsCancelledAndTheNextOneStillQueued() throws {
        let a = names["a"]
        let policy = OrchestrationPolicy(computes: [.cams: ComputePolicy(cancels: true)])
        var story = try ProductStory(PlanFixture(names: names).products("a"), policy: policy, at: Self.at(0))
        let first = try #require(story.product(a).triggerId)
        story.attempt(first, status: 200, at: Self.at(1))
        try story.apply(.update([StateUpdate(id: a, state: .running)]), at: Self.at(2))
        try story.apply(.clear([a]), at: Self.at(10))
        story.attempt(first, status: 503, at: Self.at(11), cancel: true)
        #expect(story.product(a).tryNumber == 2)

        let html = Self.detail(story, a, now: Self.at(15))

        let rows = Self.tryRows(html)
        let cleared = try #require(rows[1])
        #expect(cleared.contains("<span class=\"badge outcome cancelled\">cancelled</span> (cleared)"))
        #expect(cleared.contains("cleared: <span class=\"none\">not delivered yet</span>, last HTTP 503, 1 attempt"))
        #expect(cleared.contains("<td>10 s</td>"))
        let queued = try #require(rows[2])
        #expect(queued.contains("still queued"))
        #expect(queued.contains("<td>5 s so far</td>"))
        #expect(html.contains("retries: none · queued: no limit · running: no limit · cancelled at the platform"))
    }

    @Test func triesOlderThanTheHistoryReadAreNotGuessed() throws {
        let a = names["a"]
        var story = try ProductStory(PlanFixture(names: names).products("a"), policy: .none, at: Self.at(0))
        try story.apply(.update([StateUpdate(id: a, state: .failed)]), at: Self.at(10))
        try story.apply(.clear([a]), at: Self.at(20))
        try story.apply(.update([StateUpdate(id: a, state: .running)]), at: Self.at(30))
        // Only the history from try 2's queueing on was read: try 1 is known from its trigger alone.
        let events = story.history(of: a).prefix { event in
            if case .stateChange(let change, _) = event.kind { return change.tryNumber == 2 } else { return true }
        }
        let tries = ProductTries.build(product: story.product(a), triggers: story.triggers(of: a), events: Array(events))
        #expect(tries.map(\.number) == [2, 1])
        #expect(tries[0].outcome == .running)
        #expect(tries[1].outcome == .unknown)
        #expect(tries[1].queuedAt == Self.at(0))
    }

    @Test func aProductNeverQueuedHasNoTries() throws {
        let plan = try PlanFixture(names: names).products("a", eager: false).plan()
        let html = ProductView.fragment(
            plan: plan, graph: PlanGraph(plan), position: 0, history: nil,
            tries: .init(list: ProductTries.build(product: plan.dataProducts[0], triggers: [], events: []), now: Self.at(0)),
            viewer: nil
        ).text
        #expect(!html.contains("<h3>Tries</h3>"))
        #expect(html.contains("<dd class=\"try-field\"><span class=\"none\">not queued yet</span>"))
        #expect(html.contains("retries: none · queued: no limit · running: no limit"))
    }

    @Test func thePlanTableShowsTriesCountdownsAndTimedOutProducts() throws {
        var plan = try PlanFixture(names: names).products("retrying", "running", "idle").plan()
        let now = Self.at(1_000)
        plan.dataProducts[0].state = .failed
        plan.dataProducts[0].tryNumber = 2
        plan.dataProducts[0].retryAt = now + 12
        plan.dataProducts[0].passback = JSONValue(canonicalText: #"{"fletcher_timeout":{"limit_s":60,"phase":"running","try":2}}"#)
        plan.dataProducts[1].state = .running
        plan.dataProducts[1].tryNumber = 1
        plan.dataProducts[1].timeoutAt = now + 100
        plan.dataProducts[2].state = .waiting
        plan.dataProducts[2].tryNumber = 0
        plan.dataProducts[2].triggerId = nil

        let html = PlanView.table(plan: plan, filter: .init(), now: now).text

        #expect(html.contains("<th scope=\"col\">Try</th><th scope=\"col\">Timer</th>"))
        func row(_ name: String) throws -> String {
            let id = names[name].lowercased
            return String(try #require(html.firstMatch(of: try Regex("<tr id=\"row-\(id)\".*?</tr>"))).0)
        }
        let retrying = try row("retrying")
        #expect(retrying.contains("<td class=\"try-cell\">2</td>"))
        #expect(retrying.contains("<span class=\"timer timed-out\" title=\"try 2 timed out\">timed out (running, 1 m)</span>"))
        #expect(
            retrying.contains(
                "retry <time datetime=\"\(RFC3339.string(now + 12))\" title=\"\(RFC3339.readable(now + 12))\" data-countdown>in 12 s</time>"))
        let running = try row("running")
        #expect(running.contains("<td class=\"try-cell\">1</td>"))
        #expect(running.contains("times out <time datetime=\"\(RFC3339.string(now + 100))\""))
        #expect(running.contains("data-countdown>in 1 m 40 s</time>"))
        #expect(!running.contains("timed out"))
        #expect(try row("idle").contains("<td class=\"try-cell\"></td><td class=\"timer-cell\"></td>"))
    }

    @Test func durationsAndCountdownsReadInTwoUnitsAtMost() {
        #expect(TimerView.duration(0.25) == "250 ms")
        #expect(TimerView.duration(12) == "12 s")
        #expect(TimerView.duration(60) == "1 m")
        #expect(TimerView.duration(100) == "1 m 40 s")
        #expect(TimerView.duration(7_500) == "2 h 5 m")
        #expect(TimerView.duration(277_200) == "3 d 5 h")
        let now = Self.at(0)
        #expect(TimerView.relative(now + 11.2, now: now) == "in 12 s")
        #expect(TimerView.relative(now, now: now) == "now")
        #expect(TimerView.relative(now - 5, now: now) == "now")
    }

    @Test(arguments: TestEngine.available)
    func triesAndTimersReadBackFromTheStoreAreShown(engine: TestEngine) async throws {
        let policy = OrchestrationPolicy(computes: [
            .cams: ComputePolicy(retries: RetryPolicy(max: 1, delay: 30), maxQueued: 600, maxRunning: 60)
        ])
        let app = try await WebTestApp(engine: engine, policy: policy)
        let fixture = PlanFixture(names: names).products("a")
        let (a, dataset) = (names["a"], fixture.datasetId)
        let run = UUID()
        // Try 1 runs and fails; its retry (try 2) is cleared; try 3 is queued.
        try await app.submit(fixture)
        _ = try await app.store.apply(.update([StateUpdate(id: a, state: .running, runId: run)]), to: dataset, by: "platform")
        _ = try await app.store.apply(.update([StateUpdate(id: a, state: .failed, runId: run)]), to: dataset, by: "platform")
        let retryAt = try #require(try await app.store.dataProduct(datasetId: dataset, id: a)?.retryAt)
        _ = try await app.store.apply(.fireDue(asOf: retryAt), to: dataset, by: "fletcher")
        _ = try await app.store.apply(.clear([a]), to: dataset, by: "web")
        let product = try #require(try await app.store.dataProduct(datasetId: dataset, id: a))
        let timeoutAt = try #require(product.timeoutAt)
        #expect(product.tryNumber == 3)

        let page = try await app.get("/plan/\(dataset.lowercased)/product/\(a.lowercased)").text
        let rows = Self.tryRows(page)
        #expect(page.matches(of: /data-try="(\d+)"/).map { Int($0.1)! } == [3, 2, 1])
        #expect(rows[3]?.contains("still queued") == true)
        #expect(rows[3]?.contains(product.triggerId!.lowercased) == true)
        #expect(rows[2]?.contains("cancelled</span> (cleared)") == true)
        #expect(rows[1]?.contains("<td class=\"outcome\"><span class=\"badge state failed\">failed</span></td>") == true)
        #expect(rows[1]?.contains(run.lowercased) == true)
        #expect(page.contains("<dt>Times out at</dt><dd class=\"timeout-field\">\(Layout.time(timeoutAt))"))
        #expect(page.contains("<td>automatic retry</td>"))
        let plan = try await app.get("/plan/\(dataset.lowercased)").text
        #expect(plan.contains("<td class=\"try-cell\">3</td>"))
        #expect(plan.contains("times out <time datetime=\"\(RFC3339.string(timeoutAt))\""))
    }

    @Test(arguments: TestEngine.available)
    func theProductPageShowsItsTryAndLimitsFromTheStore(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = PlanFixture(names: names).products("a")
        try await app.submit(fixture)
        let page = try await app.get("/plan/\(fixture.datasetId.lowercased)/product/\(names["a"].lowercased)")
        #expect(page.status == .ok)
        #expect(page.contains("<dt>Try</dt><dd class=\"try-field\">"))
        #expect(page.contains("<dt>Limits</dt><dd><span class=\"limits\">retries: none"))
        let plan = try await app.get("/plan/\(fixture.datasetId.lowercased)")
        #expect(plan.contains("<th scope=\"col\">Try</th><th scope=\"col\">Timer</th>"))
        #expect(plan.contains("data-now=\""))
    }
}

@Suite("A product's tries from a long history")
struct TriesHistoryReadTests {
    /// `tries` tries of `perTry` events each (a queueing, then delivery attempts), newest first.
    static func history(tries: Int, perTry: Int) -> [ProductEvent] {
        var events: [ProductEvent] = []
        let product = UUID()
        for number in 1...tries {
            let trigger = UUID()
            let change = StateTransition(
                dataProductId: product, from: .waiting, to: .queued, reason: .triggerRule, tryNumber: number, triggerId: trigger)
            events.append(ProductEvent(sequence: Int64(events.count + 1), at: Date(), kind: .stateChange(change, actor: "test")))
            for attempt in 1..<perTry {
                let delivery = DeliveryAttempt(
                    triggerId: trigger, attempt: attempt, httpStatus: 503, error: nil, durationMilliseconds: 1, process: "test")
                events.append(ProductEvent(sequence: Int64(events.count + 1), at: Date(), kind: .delivery(delivery)))
            }
        }
        return events.reversed()
    }

    /// Reads `all` (newest first) in pages of `size`, as `Store.history` would, counting the reads.
    final class Pages {
        let all: [ProductEvent]
        let size: Int
        var reads = 0

        init(_ all: [ProductEvent], size: Int) {
            self.all = all
            self.size = size
        }

        func page(before: Int64?) -> HistoryPage {
            let older = all.filter { before == nil || $0.sequence < before! }
            return HistoryPage(fetched: Array(older.prefix(size + 1)), limit: size)
        }

        func read(_ before: Int64) -> HistoryPage? {
            reads += 1
            return page(before: before)
        }
    }

    @Test func olderPagesAreReadOnlyUntilTheOldestTryShownStarts() async throws {
        // 30 tries of 5 events: the 20 shown start with try 11, the 100th newest event.
        let pages = Pages(Self.history(tries: 30, perTry: 5), size: 40)
        let events = await ProductTries.events(first: pages.page(before: nil), reachingBackTo: 11) { pages.read($0) }
        #expect(pages.reads == 2)
        #expect(events.count == 120)
        #expect(ProductTries.reachesStart(of: 11, in: events))
    }

    @Test func atMostThreeMorePagesAreRead() async throws {
        let pages = Pages(Self.history(tries: 30, perTry: 5), size: 20)
        let events = await ProductTries.events(first: pages.page(before: nil), reachingBackTo: 11) { pages.read($0) }
        #expect(pages.reads == ProductTries.extraReads)
        #expect(events.count == 80)
        #expect(!ProductTries.reachesStart(of: 11, in: events))
    }

    @Test func aHistoryOnOnePageIsReadOnce() async throws {
        let pages = Pages(Self.history(tries: 3, perTry: 2), size: 50)
        let events = await ProductTries.events(first: pages.page(before: nil), reachingBackTo: 1) { pages.read($0) }
        #expect(pages.reads == 0)
        #expect(events.count == 6)
    }
}
