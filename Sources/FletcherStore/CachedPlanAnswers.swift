public import FletcherDomain
public import Foundation
public import NIOCore

/// A store that can confirm on a connection's event loop that the plan it holds in memory is the
/// dataset's current one, so that a plan read is answered where its request arrived, without a
/// Swift task (`PlanReadHandler`). PostgreSQL's store does, with a connection per event loop;
/// SQLite's reads block, and it has none (`Store.cachedPlanAnswers` is nil).
public protocol CachedPlanAnswers: Sendable {
    /// The answer to a read of the dataset's plan (its JSON, made by `encode` from the plan and its
    /// rows' JSON, and kept with the cached plan) if the database confirms the cached plan current, completed on `eventLoop`.
    /// Nil when the cache does not hold an `answerable` plan of the dataset (then the database is
    /// not asked), does not hold it at the dataset's revision, `encode` declines it, or the
    /// database could not be asked: the caller then reads the plan the usual way (`Store.plan`).
    func currentCachedAnswer(
        _ datasetId: UUID, on eventLoop: any EventLoop, answerable: (Plan) -> Bool,
        encode: @escaping @Sendable (Plan, PlanFragments?) -> [UInt8]?
    ) -> EventLoopFuture<[UInt8]?>
}
