//! Partial aggregation that groups rows by the bits of their group values before
//! DataFusion's `GroupValues` sees them.
//!
//! The lake's string columns are read as `Utf8View` from dictionary-encoded pages, so every
//! row holding a dictionary value carries the same 16-byte view (buffer, offset, length,
//! prefix); short strings (≤ 12 bytes) are held in the view itself. Two rows of one batch
//! whose views are equal hold equal strings, and rows are stored grouped by principal,
//! source and name, so neighbouring rows are mostly equal. DataFusion's grouping hashes and
//! compares the string bytes of every row (70 % of `GROUP BY eventSource, eventName` over
//! 10M events, lake-bench README). [`GroupByBits`] replaces the partial `AggregateExec` of
//! such queries by [`GroupByBitsExec`], which first finds the distinct bit patterns of a
//! batch (one comparison with the previous row, else one lookup of 16-byte words), hands
//! DataFusion's own `GroupValues` one row per pattern, and gives every row its pattern's
//! group. Equal bits always mean equal values; equal values with different bits (another
//! page's dictionary) are joined by `GroupValues`, so the groups are exactly DataFusion's.
//! The accumulators, their states and the output schema are the `AggregateExec`'s own.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_arrays;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{aggregate_expressions, AggregateExec, AggregateMode};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode,
    PlanProperties, ReplaceChildrenOptions,
};
use futures_util::StreamExt;
use hashbrown::HashTable;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

/// Most group columns a [`GroupByBitsExec`] takes (its loops are specialised by count).
const MAX_GROUP_COLUMNS: usize = 4;
/// Batches after a batch with few repeated bit patterns that go to `GroupValues` whole
/// (plain-encoded pages give every row its own view; probing them costs without paying).
const BATCHES_WITHOUT_PATTERNS: usize = 16;

/// The physical optimizer rule: a partial, ungrouped-set, unfiltered, unordered
/// aggregation whose group values are all string views or primitives of ≤ 16 bytes runs
/// as a [`GroupByBitsExec`].
#[derive(Debug, Default)]
pub(crate) struct GroupByBits;

impl PhysicalOptimizerRule for GroupByBits {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if !eligible(aggregate)? {
                return Ok(Transformed::no(node));
            }
            let aggregate = Arc::new(aggregate.clone());
            Ok(Transformed::yes(
                Arc::new(GroupByBitsExec::new(aggregate)) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "group_by_bits"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `aggregate` is one [`GroupByBitsExec`] runs exactly as DataFusion would.
fn eligible(aggregate: &AggregateExec) -> Result<bool> {
    let group_by = aggregate.group_expr();
    let exprs = group_by.expr();
    if *aggregate.mode() != AggregateMode::Partial
        || !group_by.is_single()
        || exprs.is_empty()
        || exprs.len() > MAX_GROUP_COLUMNS
        || aggregate.limit_options().is_some()
        || !aggregate.dynamic_expressions_produced().is_empty()
        || *aggregate.input_order_mode() != InputOrderMode::Linear
        || aggregate.filter_expr().iter().any(Option::is_some)
    {
        return Ok(false);
    }
    let accumulators_ok = aggregate.aggr_expr().iter().all(|expr| {
        expr.order_bys().is_empty() && !expr.is_distinct() && expr.groups_accumulator_supported()
    });
    if !accumulators_ok {
        return Ok(false);
    }
    let schema = aggregate.input().schema();
    let types = exprs
        .iter()
        .map(|(expr, _)| expr.data_type(&schema))
        .collect::<Result<Vec<_>>>()?;
    // Without a string among them, DataFusion's grouping of primitives is as direct as
    // this (measured: `GROUP BY date_trunc('hour', eventTime)` was slower here).
    Ok(types.iter().all(has_bits) && types.iter().any(is_view))
}

/// Whether values of `data_type` are identified by at most 128 bits of a row.
fn has_bits(data_type: &DataType) -> bool {
    is_view(data_type)
        || (data_type.is_primitive() && data_type.primitive_width().is_some_and(|w| w <= 16))
}

fn is_view(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8View | DataType::BinaryView)
}

/// A partial aggregation grouping by bit patterns first (see the module's text). Holds
/// the `AggregateExec` it stands for: its input, expressions, schema and properties.
#[derive(Debug)]
pub(crate) struct GroupByBitsExec {
    aggregate: Arc<AggregateExec>,
    metrics: ExecutionPlanMetricsSet,
}

impl GroupByBitsExec {
    fn new(aggregate: Arc<AggregateExec>) -> Self {
        Self {
            aggregate,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for GroupByBitsExec {
    fn fmt_as(&self, kind: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GroupByBitsExec: ")?;
        self.aggregate.fmt_as(kind, f)
    }
}

impl ExecutionPlan for GroupByBitsExec {
    fn name(&self) -> &'static str {
        "GroupByBitsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let replaced = Arc::clone(&self.aggregate).replace_children(children, options)?;
        let Some(aggregate) = replaced.downcast_ref::<AggregateExec>() else {
            return internal_err!("GroupByBitsExec lost its AggregateExec");
        };
        Ok(Arc::new(Self::new(Arc::new(aggregate.clone()))))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self
            .aggregate
            .input()
            .execute(partition, Arc::clone(&context))?;
        let state = Grouping::new(&self.aggregate, partition, &context, &self.metrics)?;
        let schema = self.aggregate.schema();
        let stream = futures_util::stream::unfold(
            (input, state, false),
            |(mut input, mut state, mut ended)| async move {
                loop {
                    if let Some(batch) = state.pending.pop_front() {
                        state.metrics.record_output(batch.num_rows());
                        return Some((Ok(batch), (input, state, ended)));
                    }
                    if ended {
                        state.metrics.done();
                        return None;
                    }
                    let outcome = match input.next().await {
                        Some(Ok(batch)) => state.aggregate_batch(&batch),
                        Some(Err(e)) => Err(e),
                        None => {
                            ended = true;
                            state.emit()
                        }
                    };
                    if let Err(e) = outcome {
                        // The stream ends after an error.
                        return Some((Err(e), (input, state, true)));
                    }
                }
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One partition's aggregation state.
struct Grouping {
    schema: SchemaRef,
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    group_values: Box<dyn GroupValues>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    patterns: Patterns,
    /// Each input row's group.
    group_indices: Vec<usize>,
    reservation: MemoryReservation,
    batch_size: usize,
    /// Output batches not yet returned.
    pending: VecDeque<RecordBatch>,
    metrics: BaselineMetrics,
}

impl Grouping {
    fn new(
        aggregate: &AggregateExec,
        partition: usize,
        context: &Arc<TaskContext>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Self> {
        let input_schema = aggregate.input().schema();
        let group_by = aggregate.group_expr();
        let group_values =
            new_group_values(group_by.group_schema(&input_schema)?, &GroupOrdering::None)?;
        let accumulators = aggregate
            .aggr_expr()
            .iter()
            .map(|expr| expr.create_groups_accumulator())
            .collect::<Result<_>>()?;
        let reservation = MemoryConsumer::new(format!("GroupByBitsExec[{partition}]"))
            .with_can_spill(true)
            .register(context.memory_pool());
        Ok(Self {
            schema: aggregate.schema(),
            group_exprs: group_by
                .expr()
                .iter()
                .map(|(expr, _)| Arc::clone(expr))
                .collect(),
            arguments: aggregate_expressions(aggregate.aggr_expr(), aggregate.mode(), 0)?,
            group_values,
            accumulators,
            patterns: Patterns::default(),
            group_indices: Vec::new(),
            reservation,
            batch_size: context.session_config().batch_size(),
            pending: VecDeque::new(),
            metrics: BaselineMetrics::new(metrics, partition),
        })
    }

    fn aggregate_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let timer = self.metrics.elapsed_compute().timer();
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let columns = self
            .group_exprs
            .iter()
            .map(|expr| expr.evaluate(batch)?.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        self.patterns.group(
            &columns,
            rows,
            self.group_values.as_mut(),
            &mut self.group_indices,
        )?;
        let groups = self.group_values.len();
        for (accumulator, arguments) in self.accumulators.iter_mut().zip(&self.arguments) {
            let values = arguments
                .iter()
                .map(|expr| expr.evaluate(batch)?.into_array(rows))
                .collect::<Result<Vec<_>>>()?;
            accumulator.update_batch(&values, &self.group_indices, None, groups)?;
        }
        let size = self.group_values.size()
            + self
                .accumulators
                .iter()
                .map(|accumulator| accumulator.size())
                .sum::<usize>()
            + self.patterns.size();
        drop(timer);
        if self.reservation.try_resize(size).is_err() {
            // Partial states may be emitted at any time (the final aggregation merges
            // them): under memory pressure emit what is held and start over.
            self.emit()?;
            self.reservation.try_resize(self.patterns.size())?;
        }
        Ok(())
    }

    /// Moves every group and its accumulators' states into output batches.
    fn emit(&mut self) -> Result<()> {
        if self.group_values.is_empty() {
            return Ok(());
        }
        let mut columns = self.group_values.emit(EmitTo::All)?;
        for accumulator in &mut self.accumulators {
            columns.extend(accumulator.state(EmitTo::All)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let length = self.batch_size.max(1).min(batch.num_rows() - offset);
            self.pending.push_back(batch.slice(offset, length));
            offset += length;
        }
        self.group_values.clear_shrink(self.batch_size);
        Ok(())
    }
}

/// The distinct bit patterns of a batch's group values.
#[derive(Default)]
struct Patterns {
    /// Per row, its group columns' 128 bits each (a view, or a primitive value; 0 when
    /// null), row after row.
    bits: Vec<u128>,
    /// Per row, a bit per group column that is null (empty when no value is null).
    nulls: Vec<u16>,
    /// Per row, its pattern.
    pattern_of_row: Vec<u32>,
    /// Per pattern, its first row.
    first_rows: Vec<u32>,
    /// Patterns by hash: (hash, first row).
    table: HashTable<(u64, u32)>,
    /// Per pattern, its group.
    group_of_pattern: Vec<usize>,
    /// Batches still to pass to `GroupValues` whole.
    skip: usize,
}

impl Patterns {
    /// Sets `group_indices` to each row's group, interning new groups in `group_values`.
    fn group(
        &mut self,
        columns: &[ArrayRef],
        rows: usize,
        group_values: &mut dyn GroupValues,
        group_indices: &mut Vec<usize>,
    ) -> Result<()> {
        if self.skip > 0 {
            self.skip -= 1;
            return group_values.intern(columns, group_indices);
        }
        self.read(columns, rows)?;
        match columns.len() {
            1 => self.find::<1>(rows),
            2 => self.find::<2>(rows),
            3 => self.find::<3>(rows),
            4 => self.find::<4>(rows),
            other => return internal_err!("GroupByBitsExec cannot group by {other} columns"),
        }
        if self.first_rows.len() * 2 > rows {
            self.skip = BATCHES_WITHOUT_PATTERNS;
        }
        let first_rows = UInt32Array::from(self.first_rows.clone());
        let representatives = take_arrays(columns, &first_rows, None)?;
        group_values.intern(&representatives, &mut self.group_of_pattern)?;
        group_indices.clear();
        group_indices.extend(
            self.pattern_of_row
                .iter()
                .map(|&pattern| self.group_of_pattern[pattern as usize]),
        );
        Ok(())
    }

    /// Reads each row's bits and null mask.
    fn read(&mut self, columns: &[ArrayRef], rows: usize) -> Result<()> {
        let width = columns.len();
        self.bits.clear();
        self.bits.resize(rows * width, 0);
        self.nulls.clear();
        for (index, column) in columns.iter().enumerate() {
            let mut set = |values: &mut dyn Iterator<Item = u128>| {
                for (slot, value) in self.bits[index..].iter_mut().step_by(width).zip(values) {
                    *slot = value;
                }
            };
            match column.data_type() {
                DataType::Utf8View => set(&mut column.as_string_view().views().iter().copied()),
                DataType::BinaryView => set(&mut column.as_binary_view().views().iter().copied()),
                other => {
                    let Some(size) = other.primitive_width().filter(|w| *w <= 16) else {
                        return internal_err!("GroupByBitsExec cannot group by {other}");
                    };
                    let data = column.to_data();
                    let start = data.offset() * size;
                    let values = &data.buffers()[0].as_slice()[start..start + rows * size];
                    set(&mut values.chunks_exact(size).map(|value| {
                        let mut word = [0u8; 16];
                        word[..size].copy_from_slice(value);
                        u128::from_le_bytes(word)
                    }));
                }
            }
            let Some(valid) = column
                .logical_nulls()
                .filter(|valid| valid.null_count() > 0)
            else {
                continue;
            };
            if self.nulls.is_empty() {
                self.nulls.resize(rows, 0);
            }
            for row in (0..rows).filter(|row| valid.is_null(*row)) {
                self.bits[row * width + index] = 0;
                self.nulls[row] |= 1 << index;
            }
        }
        Ok(())
    }

    /// Gives each row its pattern, the first of a pattern's rows standing for it: a row
    /// like the one before it at the cost of one comparison, any other by its hash.
    fn find<const K: usize>(&mut self, rows: usize) {
        let Self {
            bits,
            nulls,
            pattern_of_row,
            first_rows,
            table,
            ..
        } = self;
        let (keys, _) = bits.as_chunks::<K>();
        let keys = &keys[..rows];
        let nulls = nulls.as_slice();
        let same =
            |a: usize, b: usize| keys[a] == keys[b] && (nulls.is_empty() || nulls[a] == nulls[b]);
        let hash_of = |row: usize| {
            let seed = nulls.get(row).map_or(0, |mask| u64::from(*mask));
            keys[row].iter().fold(seed, |hash, word| mix(hash, *word))
        };
        pattern_of_row.clear();
        pattern_of_row.reserve(rows);
        first_rows.clear();
        table.clear();
        let mut previous = u32::MAX;
        for row in 0..rows {
            if row > 0 && same(row - 1, row) {
                pattern_of_row.push(previous);
                continue;
            }
            let hash = hash_of(row);
            previous = match table.find(hash, |&(_, first)| same(first as usize, row)) {
                Some(&(_, first)) => pattern_of_row[first as usize],
                None => {
                    let pattern = first_rows.len() as u32;
                    first_rows.push(row as u32);
                    table.insert_unique(hash, (hash, row as u32), |&(hash, _)| hash);
                    pattern
                }
            };
            pattern_of_row.push(previous);
        }
    }

    fn size(&self) -> usize {
        self.bits.capacity() * 16
            + self.nulls.capacity() * 2
            + (self.pattern_of_row.capacity() + self.first_rows.capacity()) * 4
            + self.table.capacity() * 16
            + self.group_of_pattern.capacity() * 8
    }
}

/// Folds a 128-bit word into a hash (a folded multiply per half, as foldhash does).
fn mix(hash: u64, word: u128) -> u64 {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
    let fold = |hash: u64, half: u64| {
        let product = u128::from(hash ^ half) * u128::from(MULTIPLIER);
        (product as u64) ^ ((product >> 64) as u64)
    };
    fold(fold(hash, word as u64), (word >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    const WORDS: [&str; 6] = [
        "s3.amazonaws.com",
        "ec2.amazonaws.com",
        "GetObject",
        "",
        "iam.amazonaws.com",
        "DescribeInstancesInAnotherRegion",
    ];

    /// A row of the test table: `a` and `b` as indices into [`WORDS`], and `x`.
    type Row = (Option<u8>, Option<u8>, i64);

    /// The test table: two strings and an integer.
    fn table_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8View, true),
            Field::new("b", DataType::Utf8View, true),
            Field::new("x", DataType::Int64, false),
        ]))
    }

    /// A batch whose strings are taken from one dictionary (equal values, equal views),
    /// as the Parquet reader gives them; `None` is null.
    fn batch(schema: &SchemaRef, rows: &[Row]) -> RecordBatch {
        let dictionary: ArrayRef = Arc::new(StringViewArray::from_iter_values(WORDS));
        let column = |pick: &dyn Fn(&Row) -> Option<u8>| {
            let indices =
                UInt32Array::from_iter(rows.iter().map(|row| pick(row).map(|i| u32::from(i) % 6)));
            take_arrays(&[Arc::clone(&dictionary)], &indices, None)
                .unwrap()
                .remove(0)
        };
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                column(&|row| row.0),
                column(&|row| row.1),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|row| row.2))),
            ],
        )
        .unwrap()
    }

    fn context(with_rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(7);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if with_rule {
            state = state.with_physical_optimizer_rule(Arc::new(GroupByBits));
        }
        SessionContext::new_with_state(state.build())
    }

    async fn run(
        with_rule: bool,
        partitions: Vec<Vec<RecordBatch>>,
        schema: &SchemaRef,
        sql: &str,
    ) -> (String, String) {
        let context = context(with_rule);
        let table = MemTable::try_new(Arc::clone(schema), partitions).unwrap();
        context.register_table("t", Arc::new(table)).unwrap();
        let frame = context.sql(sql).await.unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let plan_text = displayable(plan.as_ref()).indent(false).to_string();
        let batches = frame.collect().await.unwrap();
        (
            pretty_format_batches(&batches).unwrap().to_string(),
            plan_text,
        )
    }

    const QUERIES: [&str; 3] = [
        "SELECT a, b, count(*) AS n, sum(x) AS s, min(x) AS lo, max(b) AS hi, avg(x) AS mean \
         FROM t GROUP BY a, b ORDER BY a, b",
        "SELECT a, count(b) AS n FROM t GROUP BY a ORDER BY a",
        "SELECT x, a, count(*) AS n FROM t GROUP BY x, a ORDER BY x, a",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn groups_are_datafusions(
            partitions in prop::collection::vec(
                prop::collection::vec(
                    prop::collection::vec(
                        (prop::option::weighted(0.8, 0u8..6), prop::option::weighted(0.8, 0u8..6), -3i64..4),
                        0..20,
                    ),
                    0..4,
                ),
                1..3,
            )
        ) {
            let schema = table_schema();
            let partitions: Vec<Vec<RecordBatch>> = partitions
                .iter()
                .map(|batches| batches.iter().map(|rows| batch(&schema, rows)).collect())
                .collect();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for sql in QUERIES {
                let (expected, _) = runtime.block_on(run(false, partitions.clone(), &schema, sql));
                let (actual, plan) = runtime.block_on(run(true, partitions.clone(), &schema, sql));
                prop_assert_eq!(&actual, &expected, "{}", sql);
                if partitions.len() > 1 {
                    prop_assert!(plan.contains("GroupByBitsExec"), "{}", plan);
                }
            }
        }
    }

    #[test]
    fn filtered_and_primitive_groupings_keep_datafusions_operator() {
        let schema = table_schema();
        let rows = [(Some(0), Some(1), 1), (Some(1), None, 2)];
        let partitions = vec![vec![batch(&schema, &rows)], vec![batch(&schema, &rows)]];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for sql in [
            "SELECT a, count(DISTINCT b) FROM t GROUP BY a ORDER BY a",
            "SELECT a, count(*) FILTER (WHERE x > 1) FROM t GROUP BY a ORDER BY a",
            "SELECT a || 'x', count(*) FROM t GROUP BY a || 'x' ORDER BY 1",
            "SELECT x, count(*) FROM t GROUP BY x ORDER BY x",
        ] {
            let (expected, _) = runtime.block_on(run(false, partitions.clone(), &schema, sql));
            let (actual, plan) = runtime.block_on(run(true, partitions.clone(), &schema, sql));
            assert_eq!(actual, expected, "{sql}");
            // (DataFusion plans a single `DISTINCT` as two groupings, which may run here.)
            if sql.contains("FILTER") || sql.contains("BY x") {
                assert!(!plan.contains("GroupByBitsExec"), "{plan}");
            }
        }
    }

    /// Under memory pressure the partial states are emitted early, and what was emitted
    /// adds up to the true counts.
    #[test]
    fn memory_pressure_emits_partial_states_early() {
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        use datafusion::physical_plan::collect;
        use std::collections::HashMap;
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8View, true),
            Field::new("x", DataType::Int64, false),
        ]));
        // 20,000 rows, 5,000 distinct long strings, each four times.
        let names: Vec<String> = (0..20_000)
            .map(|row| format!("principal-number-{:05}", row % 5_000))
            .collect();
        let batches: Vec<RecordBatch> = names
            .chunks(1_000)
            .map(|chunk| {
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(StringViewArray::from_iter_values(chunk)),
                        Arc::new(Int64Array::from_iter_values(chunk.iter().map(|_| 1))),
                    ],
                )
                .unwrap()
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let context = context(false);
        let table = MemTable::try_new(Arc::clone(&schema), vec![batches.clone(), vec![]]).unwrap();
        context.register_table("t", Arc::new(table)).unwrap();
        let plan = runtime
            .block_on(async {
                context
                    .sql("SELECT a, count(*) FROM t GROUP BY a")
                    .await?
                    .create_physical_plan()
                    .await
            })
            .unwrap();
        let mut partial = None;
        plan.apply(|node| {
            if let Some(aggregate) = node.downcast_ref::<AggregateExec>() {
                if *aggregate.mode() == AggregateMode::Partial {
                    partial = Some(aggregate.clone());
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        let partial = partial.expect("a partial aggregation");
        assert!(eligible(&partial).unwrap());
        let exec: Arc<dyn ExecutionPlan> = Arc::new(GroupByBitsExec::new(Arc::new(partial)));
        let limited = RuntimeEnvBuilder::new()
            .with_memory_limit(64 * 1024, 1.0)
            .build_arc()
            .unwrap();
        let task = Arc::new(TaskContext::default().with_runtime(limited));
        let output = runtime.block_on(collect(exec, task)).unwrap();
        let mut counts: HashMap<String, i64> = HashMap::new();
        let mut rows = 0;
        for batch in &output {
            let keys = batch.column(0).as_string_view();
            let values = batch
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            for row in 0..batch.num_rows() {
                *counts.entry(keys.value(row).to_string()).or_default() += values.value(row);
                rows += 1;
            }
        }
        assert!(rows > 5_000, "states were emitted once ({rows} rows)");
        assert_eq!(counts.len(), 5_000);
        assert!(counts.values().all(|count| *count == 4), "{counts:?}");
    }
}
