import FletcherDomain
import FletcherJSON
import FletcherTestSupport
import Foundation
import Testing

@Suite("Orchestration rules")
struct OrchestrationRulesTests {
    let names = Names()

    @Test func submittingQueuesEagerSourcesAndLeavesTheRestWaiting() throws {
        // Given the README's example plan
        let plan = try PlanFixture(names: names).products("extract", "transform").edge("extract", "transform").plan()
        // Then
        #expect(plan.state(names["extract"]) == .queued)
        #expect(plan.state(names["transform"]) == .waiting)
        #expect(plan.dataset.paused == false)
    }

    @Test func successOfTheParentQueuesTheEagerChild() throws {
        let plan = try PlanFixture(names: names).products("extract", "transform").edge("extract", "transform").plan()
        let change = try plan.applying(.update([StateUpdate(id: names["extract"], state: .success)]))
        #expect(change.plan.state(names["extract"]) == .success)
        #expect(change.plan.state(names["transform"]) == .queued)
        #expect(change.transitions.map(\.to) == [.success, .queued])
    }

    @Test func aNonEagerProductWaitsEvenWhenItsParentsSucceeded() throws {
        let plan = try PlanFixture(names: names).products("a").products("b", eager: false).edge("a", "b").plan()
        let change = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)]))
        #expect(change.plan.state(names["b"]) == .waiting)
    }

    @Test func aChildWaitsForAllItsParents() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c").edge("a", "c").edge("b", "c").plan()
        let first = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        #expect(first.state(names["c"]) == .waiting)
        let second = try first.applying(.update([StateUpdate(id: names["b"], state: .success)])).plan
        #expect(second.state(names["c"]) == .queued)
    }

    @Test func queuedIsNotSuccessSoNothingCascades() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c").chain("a", "b", "c").plan()
        let change = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)]))
        #expect(change.plan.state(names["b"]) == .queued)
        #expect(change.plan.state(names["c"]) == .waiting)
    }

    @Test func anUpdateStoresRunIdLinkAndPassbackAndNullsWhatIsOmitted() throws {
        let plan = try PlanFixture(names: names).products("a").plan()
        let run = UUID()
        let first = try plan.applying(
            .update([StateUpdate(id: names["a"], state: .running, runId: run, link: "https://x/1", passback: .object(["k": .integer(1)]))])
        ).plan
        let product = try #require(first.dataProducts.first)
        #expect(product.runId == run)
        #expect(product.link == "https://x/1")
        #expect(product.passback == .object(["k": .integer(1)]))
        let second = try first.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        #expect(second.dataProducts[0].runId == nil)
        #expect(second.dataProducts[0].link == nil)
        #expect(second.dataProducts[0].passback == nil)
    }

    @Test func updatingAProductResetsEverythingDownstreamToWaitingKeepingRunDetails() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c").chain("a", "b", "c").plan()
        var current = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        let run = UUID()
        current = try current.applying(.update([StateUpdate(id: names["b"], state: .success, runId: run)])).plan
        current = try current.applying(.update([StateUpdate(id: names["c"], state: .failed)])).plan
        // When a is re-run
        let change = try current.applying(.update([StateUpdate(id: names["a"], state: .running)]))
        // Then b and c go back to waiting, b keeping its run id
        #expect(change.plan.state(names["b"]) == .waiting)
        #expect(change.plan.state(names["c"]) == .waiting)
        #expect(change.plan.dataProducts.first { $0.id == names["b"] }?.runId == run)
    }

    @Test func clearingAProductResetsEverythingDownstreamAndRequeuesItWhenReady() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c").chain("a", "b", "c").plan()
        var current = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        current = try current.applying(.update([StateUpdate(id: names["b"], state: .failed)])).plan
        #expect(current.state(names["c"]) == .waiting)
        // Clearing the failed b: its parent succeeded, so it is queued again
        let change = try current.applying(.clear([names["b"]]))
        #expect(change.plan.state(names["b"]) == .queued)
        #expect(change.plan.state(names["a"]) == .success)
        // Clearing a: a re-queued (no parents), b and c waiting
        let cleared = try change.plan.applying(.clear([names["a"]])).plan
        #expect(cleared.state(names["a"]) == .queued)
        #expect(cleared.state(names["b"]) == .waiting)
        #expect(cleared.state(names["c"]) == .waiting)
    }

    @Test func disablingAParentLetsItsChildrenRunWithoutIt() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c").edge("a", "c").edge("b", "c").plan()
        let first = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        let change = try first.applying(.disable([names["b"]]))
        #expect(change.plan.state(names["b"]) == .disabled)
        #expect(change.plan.state(names["c"]) == .queued)
    }

    @Test func disablingDoesNotResetDownstream() throws {
        let plan = try PlanFixture(names: names).products("a", "b").edge("a", "b").plan()
        var current = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        current = try current.applying(.update([StateUpdate(id: names["b"], state: .success)])).plan
        let change = try current.applying(.disable([names["a"]]))
        #expect(change.plan.state(names["b"]) == .success)
    }

    @Test func whilePausedNothingIsQueuedAndUnpausingQueuesWhatIsReady() throws {
        let plan = try PlanFixture(names: names).products("a", "b").edge("a", "b").plan()
        let paused = try plan.applying(.pause).plan
        #expect(paused.dataset.paused)
        let updated = try paused.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        #expect(updated.state(names["b"]) == .waiting)
        let resubmitted = try updated.applying(.submit(PlanFixture(names: names).products("c").submission)).plan
        #expect(resubmitted.state(names["c"]) == .waiting)
        let unpaused = try resubmitted.applying(.unpause).plan
        #expect(unpaused.state(names["b"]) == .queued)
        #expect(unpaused.state(names["c"]) == .queued)
    }

    @Test func pausingTwiceOrUnpausingAnActiveDatasetIsRefused() throws {
        let plan = try PlanFixture(names: names).products("a").plan()
        #expect(throws: PlanError.notPaused(plan.dataset.id)) { try plan.applying(.unpause) }
        let paused = try plan.applying(.pause).plan
        #expect(throws: PlanError.alreadyPaused(plan.dataset.id)) { try paused.applying(.pause) }
    }

    @Test func anEmptyUpdateClearOrDisableChangesNothing() throws {
        let plan = try PlanFixture(names: names).products("a").plan()
        for mutation in [PlanMutation.update([]), .clear([]), .disable([])] {
            let change = try plan.applying(mutation)
            #expect(change.isEmpty)
            #expect(change.plan == plan)
        }
    }

    @Test func onlyRunningSuccessAndFailedMayBeReported() throws {
        let plan = try PlanFixture(names: names).products("a").plan()
        for state in [DataProductState.waiting, .queued, .disabled] {
            #expect(throws: PlanError.unreportableState(id: names["a"], state: state)) {
                try plan.applying(.update([StateUpdate(id: names["a"], state: state)]))
            }
        }
    }

    @Test func unknownProductsAre404AndDisabledOnes403() throws {
        let plan = try PlanFixture(names: names).products("a", "b").plan()
        let disabled = try plan.applying(.disable([names["b"]])).plan
        let ghost = UUID()
        let expectedNotFound = PlanError.dataProductNotFound(datasetId: plan.dataset.id, id: ghost)
        #expect(throws: expectedNotFound) { try disabled.applying(.update([StateUpdate(id: ghost, state: .success)])) }
        #expect(throws: expectedNotFound) { try disabled.applying(.clear([ghost])) }
        #expect(throws: expectedNotFound) { try disabled.applying(.disable([ghost])) }
        #expect(throws: PlanError.dataProductDisabled(names["b"])) {
            try disabled.applying(.update([StateUpdate(id: names["b"], state: .success)]))
        }
        #expect(throws: PlanError.dataProductDisabled(names["b"])) { try disabled.applying(.clear([names["b"]])) }
        #expect(throws: PlanError.dataProductDisabled(names["b"])) { try disabled.applying(.disable([names["b"]])) }
    }

    @Test func mutationsOtherThanSubmitNeedAnExistingDataset() throws {
        let id = UUID()
        #expect(throws: PlanError.datasetNotFound(id)) {
            try PlanMutation.pause.apply(to: nil, datasetId: id, by: "t", at: Date())
        }
    }

    @Test func onlyChangedRowsAreReportedAndStamped() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c").edge("a", "b").plan()
        let later = Date(timeIntervalSince1970: 1_800_000_000)
        let change = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), by: "platform", at: later)
        let changedIds = Set(change.changedProducts.map { change.plan.dataProducts[$0].id })
        #expect(changedIds == [names["a"], names["b"]])
        #expect(change.changedDependencies.isEmpty)
        for position in change.changedProducts {
            #expect(change.plan.dataProducts[position].modifiedBy == "platform")
            #expect(change.plan.dataProducts[position].modifiedDate == later)
        }
        #expect(change.plan.dataProducts.first { $0.id == names["c"] }?.modifiedBy == "test")
        #expect(!change.datasetChanged)
    }
}

@Suite("State history")
struct StateHistoryTests {
    let names = Names()

    @Test func everyChangeIsRecordedInOrderWithItsReason() throws {
        let plan = try PlanFixture(names: names).products("a", "b").edge("a", "b").plan()
        var current = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        current = try current.applying(.update([StateUpdate(id: names["b"], state: .running)])).plan
        let change = try current.applying(.clear([names["a"]]))
        let steps = change.transitions.map { "\(names.name($0.dataProductId)):\($0.from!.rawValue)>\($0.to.rawValue):\($0.reason.rawValue)" }
        #expect(steps == ["a:success>waiting:api", "b:running>waiting:downstream_reset", "a:waiting>queued:trigger_rule"])
    }

    @Test func aSubmissionRecordsTheCreationOfEachProduct() throws {
        let change = try PlanMutation.submit(PlanFixture(names: names).products("a").products("b", eager: false).submission)
            .apply(to: nil, datasetId: names["dataset"], by: "t", at: Date())
        #expect(change.transitions.map(\.from) == [nil, nil, .waiting])
        #expect(change.transitions.map(\.reason) == [.api, .api, .triggerRule])
    }

    @Test func aFailedDispatchFailsTheProductThroughTheRules() throws {
        let plan = try PlanFixture(names: names).products("a", "b").edge("a", "b").plan()
        let passback = JSONValue.object(["fletcher_dispatch": .object(["error": .string("refused")])])
        let change = try plan.applying(.dispatchFailed(dataProductId: names["a"], passback: passback))
        #expect(change.plan.state(names["a"]) == .failed)
        #expect(change.plan.dataProduct(names["a"])?.passback == passback)
        #expect(change.transitions.map(\.reason) == [.dispatch])
        // Once the product has left queued, a late failure changes nothing.
        let running = try plan.applying(.update([StateUpdate(id: names["a"], state: .running)])).plan
        #expect(try running.applying(.dispatchFailed(dataProductId: names["a"], passback: passback)).isEmpty)
    }
}
