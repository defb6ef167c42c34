//! Query results on disk: one file per finished query, `<dir>/<query-id>.jsonl`, one
//! rendered row a line (`[{"column":"value"},…]`, as GetQueryResults returns it), written
//! whole (temporary file, fsync, rename) before the query is marked FINISHED. A page is
//! read from a byte position that the NextToken carries, so paging a large result reads
//! each row once.

use crate::QueryError;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One result row as GetQueryResults returns it: one single-key object per column.
pub type ResultRow = Vec<BTreeMap<String, String>>;

/// Where the next page starts: its row number and the byte offset of its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub row: u64,
    pub byte: u64,
}

pub(crate) struct ResultFiles {
    dir: PathBuf,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> QueryError {
    QueryError::Internal(format!(
        "failed to {what} query results {}: {e}",
        path.display()
    ))
}

impl ResultFiles {
    pub(crate) fn open(dir: PathBuf) -> Result<Self, QueryError> {
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create the folder of", &dir, e))?;
        Ok(Self { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jsonl"))
    }

    /// Stores a query's rendered rows durably; returns how many there are.
    pub(crate) fn write(&self, id: &str, rows: &serde_json::Value) -> Result<u64, QueryError> {
        let path = self.path(id);
        let temporary = self.dir.join(format!("{id}.jsonl.tmp"));
        let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
            for row in rows {
                serde_json::to_writer(&mut out, row)?;
                out.write_all(b"\n")?;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| io_error("write", &path, e))?;
        Ok(rows.len() as u64)
    }

    /// Up to `max` rows from `from`, and where the next page starts (`None` at the end).
    pub(crate) fn read_page(
        &self,
        id: &str,
        from: Position,
        max: usize,
    ) -> Result<(Vec<ResultRow>, Option<Position>), QueryError> {
        let path = self.path(id);
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(QueryError::Internal(format!(
                    "the results of query {id} are missing from {}",
                    self.dir.display()
                )))
            }
            Err(e) => return Err(io_error("open", &path, e)),
        };
        let length = file
            .metadata()
            .map_err(|e| io_error("read", &path, e))?
            .len();
        let invalid = || QueryError::InvalidNextToken("The NextToken is not valid".into());
        if from.byte > length {
            return Err(invalid());
        }
        if from.byte > 0 {
            // A page starts at the beginning of a line.
            let mut before = [0u8; 1];
            file.seek(SeekFrom::Start(from.byte - 1))
                .and_then(|_| file.read_exact(&mut before))
                .map_err(|e| io_error("read", &path, e))?;
            if before[0] != b'\n' {
                return Err(invalid());
            }
        }
        file.seek(SeekFrom::Start(from.byte))
            .map_err(|e| io_error("read", &path, e))?;
        let mut reader = BufReader::new(file);
        let mut rows = Vec::new();
        let mut byte = from.byte;
        let mut line = String::new();
        while rows.len() < max {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .map_err(|e| io_error("read", &path, e))?;
            if read == 0 {
                return Ok((rows, None));
            }
            byte += read as u64;
            let row: ResultRow = serde_json::from_str(line.trim_end()).map_err(|e| {
                QueryError::Internal(format!(
                    "query results {} are unreadable: {e}",
                    path.display()
                ))
            })?;
            rows.push(row);
        }
        let next = (byte < length).then_some(Position {
            row: from.row + rows.len() as u64,
            byte,
        });
        Ok((rows, next))
    }

    /// Deletes a query's results (and an unfinished temporary file); absent is fine.
    pub(crate) fn remove(&self, id: &str) {
        for path in [self.path(id), self.dir.join(format!("{id}.jsonl.tmp"))] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "failed to delete query results")
                }
            }
        }
    }
}
