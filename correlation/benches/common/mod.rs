//! What the correlation benches share: record shapes and a request-id workload.

pub mod records;

use bytes::BytesMut;
use hindsight_correlation::ecs::{AddedFields, Layouts};
use hindsight_correlation::extract::FieldSet;
use hindsight_correlation::json::ObjectWriter;
use hindsight_correlation::time::{parse_epoch, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `ids` request ids (UUID text, seeded) of 3–12 lines each, `interleaved` requests at a
/// time, about 0.1 ms apart: the ids, and (id index, time) per line.
pub fn request_lines(ids: usize, interleaved: usize) -> (Vec<String>, Vec<(u32, Timestamp)>) {
    let mut rng = StdRng::seed_from_u64(11);
    let texts: Vec<String> = (0..ids)
        .map(|_| {
            let (a, b) = (rng.random::<u64>(), rng.random::<u64>());
            format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xffff,
                b >> 48,
                b & 0xffff_ffff_ffff
            )
        })
        .collect();
    let mut lines = Vec::with_capacity(ids * 8);
    let mut active: Vec<(u32, u32)> = Vec::with_capacity(interleaved);
    let mut next_id = 0;
    let mut millis = 1_700_000_000_000.0;
    loop {
        while active.len() < interleaved && next_id < ids {
            active.push((next_id as u32, rng.random_range(3..=12)));
            next_id += 1;
        }
        if active.is_empty() {
            break;
        }
        let pick = rng.random_range(0..active.len());
        millis += rng.random_range(0.0..0.2);
        lines.push((active[pick].0, parse_epoch(millis).expect("a valid time")));
        active[pick].1 -= 1;
        if active[pick].1 == 0 {
            active.swap_remove(pick);
        }
    }
    (texts, lines)
}

/// What the agent's record builder does with a line: scan it, then write the document
/// with its ECS fields spliced in, into `out` (cleared first). False when it is not a
/// JSON object.
pub fn splice(fields: &FieldSet, line: &[u8], layouts: &mut Layouts, out: &mut BytesMut) -> bool {
    let Ok(scan) = fields.scan(line) else {
        return false;
    };
    let mut added = AddedFields::new();
    scan.extracted.add_ecs_fields(&mut added);
    out.clear();
    let mut doc = ObjectWriter::splice(out, line, &scan.top);
    added.write_with(&mut doc, &scan.top, layouts);
    doc.finish();
    true
}
