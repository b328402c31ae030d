import FletcherJSON
public import Foundation

/// What an OpenLineage RunEvent tells of one try of a data product: which try, what happened to
/// it, and the product's place in its plan.
public struct LineageRun: Sendable, Hashable {
    /// A run's transition, as OpenLineage names it.
    public enum EventType: String, Sendable, Hashable, CaseIterable {
        /// The try is queued (its trigger made).
        case start = "START"
        /// The platform reported `running`.
        case running = "RUNNING"
        /// The try succeeded.
        case complete = "COMPLETE"
        /// The try failed (or timed out).
        case fail = "FAIL"
        /// The try was cleared, disabled or cancelled.
        case abort = "ABORT"
    }

    public var eventType: EventType
    public var eventTime: Date
    /// The run: the try's trigger id.
    public var runId: UUID
    public var datasetId: UUID
    public var dataProductId: UUID
    public var productName: String
    public var tryNumber: Int
    /// The data products this one depends on, whose outputs are its inputs.
    public var parents: [UUID]
    /// Why the try failed (FAIL): the passback as compact JSON text; nil: no error facet.
    public var errorMessage: String?

    public init(
        eventType: EventType, eventTime: Date, runId: UUID, datasetId: UUID, dataProductId: UUID, productName: String,
        tryNumber: Int, parents: [UUID] = [], errorMessage: String? = nil
    ) {
        self.eventType = eventType
        self.eventTime = eventTime
        self.runId = runId
        self.datasetId = datasetId
        self.dataProductId = dataProductId
        self.productName = productName
        self.tryNumber = tryNumber
        self.parents = parents
        self.errorMessage = errorMessage
    }
}

/// An OpenLineage RunEvent (spec 2-0-2) as JSON, for `POST {OPENLINEAGE_URL}/api/v1/lineage`.
///
/// - `run`: `runId` the try's trigger id; facets `parent` (the dataset's run: its id as `runId`,
///   job `{namespace, dataset_id}`), `fletcher_try` (`{"try": n}`) and, for a FAIL with a
///   passback, `errorMessage` (`message` the passback's JSON, `programmingLanguage` `UNKNOWN`:
///   Fletcher does not know the platform's).
/// - `job`: `{namespace, "{dataset_id}.{data_product_id}"}`; facets `jobType` (BATCH, integration
///   FLETCHER, job type DATA_PRODUCT) and `fletcher_dataProduct` (`name`, `dataset_id`,
///   `data_product_id`).
/// - `inputs`: each parent's output, `{namespace, "{dataset_id}.{parent_id}"}`; `outputs`: the
///   product's own, `{namespace, "{dataset_id}.{data_product_id}"}`.
///
/// Every facet carries `_producer` and `_schemaURL`, as the spec requires; the custom facets'
/// schemas are named under the producer's URI.
public enum OpenLineageEvent {
    public static let schemaURL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    static let parentSchemaURL = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet"
    static let errorSchemaURL = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
    static let jobTypeSchemaURL = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"

    /// The job name of a data product: `{dataset_id}.{data_product_id}`, also the name of its output.
    public static func jobName(datasetId: UUID, dataProductId: UUID) -> String {
        "\(datasetId.lowercased).\(dataProductId.lowercased)"
    }

    /// The RunEvent for `run` in `namespace`, from `producer` (a URI naming this Fletcher).
    public static func json(for run: LineageRun, namespace: String, producer: String) -> [UInt8] {
        let name = jobName(datasetId: run.datasetId, dataProductId: run.dataProductId)
        var json = JSONBytes(capacity: 1024 + run.parents.count * 96)
        func facetHeader(_ schemaURL: String) {
            json.raw(#"{"_producer":"#)
            json.string(producer)
            json.raw(#","_schemaURL":"#)
            json.string(schemaURL)
        }
        func dataset(_ productId: UUID) {
            json.raw(#"{"namespace":"#)
            json.string(namespace)
            json.raw(#","name":"#)
            json.string(jobName(datasetId: run.datasetId, dataProductId: productId))
            json.raw("}")
        }
        json.raw(#"{"eventType":"#)
        json.string(run.eventType.rawValue)
        json.raw(#","eventTime":"#)
        json.date(run.eventTime)

        json.raw(#","run":{"runId":"#)
        json.uuid(run.runId)
        json.raw(#","facets":{"parent":"#)
        facetHeader(parentSchemaURL)
        json.raw(#","run":{"runId":"#)
        json.uuid(run.datasetId)
        json.raw(#"},"job":{"namespace":"#)
        json.string(namespace)
        json.raw(#","name":"#)
        json.string(run.datasetId.lowercased)
        json.raw(#"}},"fletcher_try":"#)
        facetHeader(customSchemaURL(producer, "TryRunFacet"))
        json.raw(#","try":"#)
        json.append(Array(String(run.tryNumber).utf8))
        json.raw("}")
        if run.eventType == .fail, let message = run.errorMessage {
            json.raw(#","errorMessage":"#)
            facetHeader(errorSchemaURL)
            json.raw(#","message":"#)
            json.string(message)
            json.raw(#","programmingLanguage":"UNKNOWN"}"#)
        }
        json.raw("}}")

        json.raw(#","job":{"namespace":"#)
        json.string(namespace)
        json.raw(#","name":"#)
        json.string(name)
        json.raw(#","facets":{"jobType":"#)
        facetHeader(jobTypeSchemaURL)
        json.raw(#","processingType":"BATCH","integration":"FLETCHER","jobType":"DATA_PRODUCT"},"fletcher_dataProduct":"#)
        facetHeader(customSchemaURL(producer, "DataProductJobFacet"))
        json.raw(#","name":"#)
        json.string(run.productName)
        json.raw(#","dataset_id":"#)
        json.uuid(run.datasetId)
        json.raw(#","data_product_id":"#)
        json.uuid(run.dataProductId)
        json.raw("}}}")

        json.raw(#","inputs":["#)
        for (offset, parent) in run.parents.enumerated() {
            if offset > 0 { json.raw(",") }
            dataset(parent)
        }
        json.raw(#"],"outputs":["#)
        dataset(run.dataProductId)
        json.raw(#"],"producer":"#)
        json.string(producer)
        json.raw(#","schemaURL":"#)
        json.string(schemaURL)
        json.raw("}")
        return json.bytes
    }

    /// Where a custom facet's schema is named: under the producer's URI, versioned.
    static func customSchemaURL(_ producer: String, _ facet: String) -> String {
        let base = producer.hasSuffix("/") ? String(producer.dropLast()) : producer
        return "\(base)/openlineage/facets/1-0-0/\(facet).json#/$defs/\(facet)"
    }
}
