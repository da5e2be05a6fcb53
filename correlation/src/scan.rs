//! The one validating pass over a JSON object behind [`crate::json::scan_object`] and
//! [`crate::extract::FieldSet::scan`].
//!
//! Every path of interest (the agent's roots and time fields, the tracked output paths,
//! the configured candidate fields) is a node in a trie keyed by dotted segments. Each
//! key of the object is walked down the trie segment by segment, so `"http.request.id"`,
//! `"http":{"request":{"id":…}}` and `"http":{"request.id":…}` reach the same node. The
//! walk descends only into objects whose node has children; every other value is
//! checked and skipped by the [`crate::lexer`], without recursion (and without
//! allocating, up to 128 levels of nesting).

use std::borrow::Cow;

use crate::extract::{Hits, Target};
use crate::json::{NotAnObject, TimeValue, TopLevel, AGENT_PATHS, AGENT_ROOTS, TIME_FIELDS};
use crate::lexer::{Invalid, Lexer, Number};

/// The bit for a segment's length in [`Node::child_lengths`].
fn length_bit(segment: &str) -> u64 {
    1 << segment.len().min(63)
}

/// A segment's first 7 bytes (little-endian) and its length in one word: equal tags mean
/// equal names for names of up to 7 bytes.
///
/// Every key of every record is tagged, so the bytes are gathered without a loop: one
/// load for 8 bytes or more, two overlapping ones for 4 to 7 (the overlap holds the same
/// bytes at the same places), three single bytes below that.
fn tag(segment: &str) -> u64 {
    let bytes = segment.as_bytes();
    let len = bytes.len();
    let head = match len {
        0 => 0,
        1..=3 => {
            let byte = |at: usize| u64::from(bytes[at]) << (8 * at);
            byte(0) | byte(len / 2) | byte(len - 1)
        }
        4..=7 => {
            let word = |at: usize| {
                u64::from(u32::from_le_bytes([
                    bytes[at],
                    bytes[at + 1],
                    bytes[at + 2],
                    bytes[at + 3],
                ]))
            };
            word(0) | word(len - 4) << (8 * (len - 4))
        }
        _ => {
            let mut first = [0u8; 8];
            first.copy_from_slice(&bytes[..8]);
            u64::from_le_bytes(first) & 0x00ff_ffff_ffff_ffff
        }
    };
    head | (len.min(255) as u64) << 56
}

/// [`tag`] of a key of `len` bytes whose first eight bytes of the line (padded past its
/// end with any bytes) are `head`, little-endian: the bytes past its end are masked off.
#[inline]
fn tag_from_head(head: u64, len: usize) -> u64 {
    let kept = len.min(7) * 8;
    let mask = (1u64 << kept) - 1;
    (head & mask) | (len.min(255) as u64) << 56
}

/// Where a tag starts probing in an index of `mask + 1` slots (Fibonacci hashing).
fn slot(tag: u64, mask: usize) -> usize {
    (tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

/// A place in [`Node::index`]: a child's tag and node, and where its name is in
/// `children`. The tag settles names of up to 7 bytes without another load.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    tag: u64,
    node: u32,
    /// The child's position in `children` + 1; 0 for an empty slot.
    position: u32,
}

/// Whether `name` and `segment`, whose tags are equal (so are their lengths and first
/// seven bytes), are the same text: names of up to 15 bytes differ, if at all, in their
/// last eight bytes, compared as one word.
#[inline]
fn same_tail(name: &str, segment: &str) -> bool {
    let (name, segment) = (name.as_bytes(), segment.as_bytes());
    let len = segment.len();
    match len {
        0..=7 => true,
        8..=15 => {
            let last8 = |bytes: &[u8]| {
                let mut word = [0u8; 8];
                word.copy_from_slice(&bytes[len - 8..len]);
                u64::from_le_bytes(word)
            };
            last8(name) == last8(segment)
        }
        _ => name == segment,
    }
}

/// The trie's root: the object's top level.
pub(crate) const ROOT: u32 = 0;

/// The deepest configured path, in segments (guards recursion while descending).
pub(crate) const MAX_DEPTH: usize = 8;

/// Paths of interest, by dotted segment.
#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

/// One path prefix.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// Next segments: [`tag`] of the name, the name, the node.
    children: Vec<(u64, Box<str>, u32)>,
    /// Bit `n` set when a child's name is `n` bytes long (63 for any longer): most keys
    /// of a record match no child, and this rejects them without comparing text.
    child_lengths: u64,
    /// For nodes with many children (the top level): an open-addressing table of the
    /// children by [`tag`], at most a quarter full.
    index: Vec<Slot>,
    /// What a value found here is for.
    pub(crate) targets: Vec<Target>,
    /// Index in [`TIME_FIELDS`] (top level only).
    pub(crate) time_field: Option<u8>,
    /// Index in [`AGENT_ROOTS`] (top level only).
    pub(crate) agent_root: Option<u8>,
    /// [`AGENT_PATHS`] bits of paths that end here.
    pub(crate) occupies: u32,
    /// [`AGENT_PATHS`] bits of paths that pass through here: a non-object here blocks them.
    pub(crate) blocks: u32,
}

impl Trie {
    /// The agent's own paths: [`TIME_FIELDS`], [`AGENT_ROOTS`] and [`AGENT_PATHS`].
    pub(crate) fn agent() -> Trie {
        let mut trie = Trie {
            nodes: vec![Node::default()],
        };
        for (index, name) in TIME_FIELDS.iter().enumerate() {
            let node = trie.insert(name);
            trie.nodes[node as usize].time_field = Some(index as u8);
        }
        for (index, name) in AGENT_ROOTS.iter().enumerate() {
            let node = trie.insert(name);
            trie.nodes[node as usize].agent_root = Some(index as u8);
        }
        for (index, path) in AGENT_PATHS.iter().enumerate() {
            let bit = 1u32 << index;
            let mut node = ROOT;
            let mut segments = path.split('.').peekable();
            while let Some(segment) = segments.next() {
                node = trie.child_or_insert(node, segment);
                if segments.peek().is_some() {
                    trie.nodes[node as usize].blocks |= bit;
                } else {
                    trie.nodes[node as usize].occupies |= bit;
                }
            }
        }
        trie
    }

    /// The node for a dotted path, created as needed.
    pub(crate) fn insert(&mut self, path: &str) -> u32 {
        path.split('.')
            .fold(ROOT, |node, segment| self.child_or_insert(node, segment))
    }

    fn child_or_insert(&mut self, node: u32, segment: &str) -> u32 {
        if let Some(id) = self.child(node, segment) {
            return id;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        let parent = &mut self.nodes[node as usize];
        parent.children.push((tag(segment), segment.into(), id));
        parent.child_lengths |= length_bit(segment);
        if parent.children.len() > 4 {
            let mut index = vec![Slot::default(); (parent.children.len() * 4).next_power_of_two()];
            let mask = index.len() - 1;
            for (position, (tag, _, node)) in parent.children.iter().enumerate() {
                let mut at = slot(*tag, mask);
                while index[at].position != 0 {
                    at = (at + 1) & mask;
                }
                index[at] = Slot {
                    tag: *tag,
                    node: *node,
                    position: position as u32 + 1,
                };
            }
            parent.index = index;
        }
        id
    }

    /// The child of `node` named `segment`.
    fn child(&self, node: u32, segment: &str) -> Option<u32> {
        self.child_tagged(node, segment, || tag(segment))
    }

    /// [`Trie::child`], with the segment's [`tag`] made by `tag_of` when needed.
    fn child_tagged(&self, node: u32, segment: &str, tag_of: impl FnOnce() -> u64) -> Option<u32> {
        let node = &self.nodes[node as usize];
        if node.child_lengths & length_bit(segment) == 0 {
            return None;
        }
        // Comparing tags settles names of up to 7 bytes without calling memcmp.
        let wanted = tag_of();
        if node.index.is_empty() {
            return node
                .children
                .iter()
                .find(|(tag, name, _)| *tag == wanted && same_tail(name, segment))
                .map(|(_, _, id)| *id);
        }
        let mask = node.index.len() - 1;
        let mut at = slot(wanted, mask);
        loop {
            let found = node.index[at];
            if found.position == 0 {
                return None;
            }
            if found.tag == wanted
                && (segment.len() <= 7
                    || same_tail(&node.children[found.position as usize - 1].1, segment))
            {
                return Some(found.node);
            }
            at = (at + 1) & mask;
        }
    }

    /// The node a key leads to from `from`; a key with dots walks one segment per part.
    pub(crate) fn walk(&self, from: u32, key: &str) -> Option<u32> {
        let mut node = from;
        let mut rest = key;
        loop {
            // Keys are short: a plain loop beats memchr's setup here.
            match rest.bytes().position(|byte| byte == b'.') {
                None => return self.child(node, rest),
                Some(dot) => {
                    node = self.child(node, &rest[..dot])?;
                    rest = &rest[dot + 1..];
                }
            }
        }
    }

    pub(crate) fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    pub(crate) fn node_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize]
    }
}

/// A JSON scalar, strings borrowed from the line when they need no unescaping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'de> {
    Str(Cow<'de, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool,
    Null,
}

/// What was found at a node: whether it was an object, and the scalar when it was one
/// and the node wants it.
#[derive(Debug)]
pub(crate) struct Seen<'de> {
    pub(crate) object: bool,
    pub(crate) scalar: Option<Scalar<'de>>,
}

impl<'de> Seen<'de> {
    const OBJECT: Seen<'static> = Seen {
        object: true,
        scalar: None,
    };
    const OTHER: Seen<'static> = Seen {
        object: false,
        scalar: None,
    };

    fn scalar(scalar: Scalar<'de>) -> Seen<'de> {
        Seen {
            object: false,
            scalar: Some(scalar),
        }
    }

    /// The value as a record time.
    pub(crate) fn time_value(&self) -> TimeValue<'de> {
        match &self.scalar {
            Some(Scalar::Str(text)) => TimeValue::Text(text.clone()),
            Some(Scalar::U64(number)) => TimeValue::Number(*number as f64),
            Some(Scalar::I64(number)) => TimeValue::Number(*number as f64),
            Some(Scalar::F64(number)) => TimeValue::Number(*number),
            _ => TimeValue::Other,
        }
    }
}

/// Validates `text` as one JSON object and records what the trie asks for into `hits`.
pub(crate) fn scan<'a>(
    text: &'a str,
    trie: &Trie,
    hits: &mut Hits<'a>,
) -> Result<TopLevel<'a>, NotAnObject> {
    let mut lexer = Lexer::new(text);
    lexer.skip_whitespace();
    if lexer.peek() != Some(b'{') {
        // Valid JSON that is not an object, or not JSON at all.
        return match lexer.skip_value() {
            Ok(()) if lexer.at_end() => Err(NotAnObject::NotObject),
            _ => Err(NotAnObject::InvalidJson),
        };
    }
    let mut top = TopLevel {
        empty: true,
        ..TopLevel::default()
    };
    let mut walker = Walker { trie, hits };
    walker
        .object(&mut lexer, ROOT, 0, Some(&mut top))
        .map_err(|Invalid| NotAnObject::InvalidJson)?;
    if !lexer.at_end() {
        return Err(NotAnObject::InvalidJson);
    }
    top.occupied = walker.hits.occupied;
    top.raw_newline = lexer.saw_newline();
    Ok(top)
}

/// Walks the trie alongside the lexer: descends only into objects whose node has
/// children, reads scalars only where a node has a use for them, skips the rest.
struct Walker<'s, 'a> {
    trie: &'s Trie,
    hits: &'s mut Hits<'a>,
}

impl<'a> Walker<'_, 'a> {
    /// Reads the object whose `{` is next, its keys walked from `node`; at the top level
    /// (`top` given) also notes time fields, agent roots and emptiness.
    fn object(
        &mut self,
        lexer: &mut Lexer<'a>,
        node: u32,
        depth: usize,
        mut top: Option<&mut TopLevel<'a>>,
    ) -> Result<(), Invalid> {
        lexer.expect(b'{')?;
        lexer.skip_whitespace();
        if lexer.peek() == Some(b'}') {
            lexer.next_token()?;
            return Ok(());
        }
        loop {
            lexer.skip_whitespace();
            if lexer.peek() != Some(b'"') {
                return Err(Invalid);
            }
            let key = lexer.key()?;
            lexer.expect(b':')?;
            if let Some(top) = top.as_deref_mut() {
                top.empty = false;
            }
            let found = if key.dotted {
                self.trie.walk(node, &key.text)
            } else {
                let text = &key.text;
                self.trie.child_tagged(node, text, || match key.head {
                    Some(head) => tag_from_head(head, text.len()),
                    None => tag(text),
                })
            };
            match found {
                None => lexer.skip_value()?,
                Some(id) => {
                    let seen = self.value(lexer, id, depth + 1)?;
                    let found = self.trie.node(id);
                    if let Some(top) = top.as_deref_mut() {
                        if let Some(index) = found.time_field.map(usize::from) {
                            if top.time.as_ref().is_none_or(|(known, _)| index < *known) {
                                top.time = Some((index, seen.time_value()));
                            }
                        }
                        if let Some(index) = found.agent_root {
                            top.roots[usize::from(index)] = Some(seen.object);
                        }
                    }
                    self.hits.record(found, &seen);
                }
            }
            match lexer.next_token()? {
                b',' => continue,
                b'}' => return Ok(()),
                _ => return Err(Invalid),
            }
        }
    }

    /// Reads the value at trie node `id`, `depth` levels down.
    fn value(&mut self, lexer: &mut Lexer<'a>, id: u32, depth: usize) -> Result<Seen<'a>, Invalid> {
        let node = self.trie.node(id);
        let wants_scalar = !node.targets.is_empty() || node.time_field.is_some();
        lexer.skip_whitespace();
        let scalar = match lexer.peek().ok_or(Invalid)? {
            b'{' if !node.children.is_empty() && depth < MAX_DEPTH => {
                self.object(lexer, id, depth, None)?;
                return Ok(Seen::OBJECT);
            }
            b'{' => {
                lexer.skip_value()?;
                return Ok(Seen::OBJECT);
            }
            b'"' if wants_scalar => Scalar::Str(lexer.string()?),
            b'-' | b'0'..=b'9' if wants_scalar => number(lexer.number()?),
            b't' | b'f' => {
                lexer.skip_value()?;
                Scalar::Bool
            }
            b'n' => {
                lexer.skip_value()?;
                Scalar::Null
            }
            _ => {
                lexer.skip_value()?;
                return Ok(Seen::OTHER);
            }
        };
        Ok(Seen::scalar(scalar))
    }
}

/// A number's value as serde_json gives it: an integer that fits as `u64` (or `i64`
/// when negative, except `-0`, which is `f64` to keep its sign), any other number as
/// `f64`. Unlike serde_json, a number beyond `f64`'s range is ±infinity, not an error:
/// no time or level is read from it, and the record is kept.
fn number(number: Number<'_>) -> Scalar<'static> {
    if number.integer && number.text != "-0" {
        if let Ok(value) = number.text.parse::<u64>() {
            return Scalar::U64(value);
        }
        if let Ok(value) = number.text.parse::<i64>() {
            return Scalar::I64(value);
        }
    }
    // The lexer checked the grammar, which `f64`'s parser accepts; out of range is ±inf.
    Scalar::F64(number.text.parse().unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tag as first written: a byte at a time.
    fn tag_bytewise(segment: &str) -> u64 {
        let bytes = segment.as_bytes();
        let mut word = (bytes.len().min(255) as u64) << 56;
        for (at, byte) in bytes.iter().take(7).enumerate() {
            word |= u64::from(*byte) << (8 * at);
        }
        word
    }

    /// Every substring of `text` that is valid UTF-8, with where it starts.
    fn segments(text: &str) -> impl Iterator<Item = (usize, &str)> {
        (0..text.len()).flat_map(move |start| {
            (start..=text.len()).filter_map(move |end| Some((start, text.get(start..end)?)))
        })
    }

    #[test]
    fn tags_gather_the_same_bytes_as_a_byte_at_a_time() {
        for (_, segment) in segments("abcdefghijklmnopqrstuvwxyz_é.0123456789ü") {
            assert_eq!(tag(segment), tag_bytewise(segment), "{segment:?}");
        }
        let long = "x".repeat(300);
        assert_eq!(tag(&long), tag_bytewise(&long));
    }

    #[test]
    fn names_with_the_same_tag_lead_to_their_own_nodes() {
        // Equal lengths and first seven bytes: only the rest tells them apart.
        let names = [
            "request_id",
            "request_ix",
            "requestXid",
            "request_correlation_a",
            "request_correlation_b",
            "req",
        ];
        // Two children are searched in turn, more through the node's index.
        for count in [2, names.len()] {
            let mut trie = Trie {
                nodes: vec![Node::default()],
            };
            let ids: Vec<u32> = names[..count]
                .iter()
                .map(|name| trie.insert(name))
                .collect();
            for (name, id) in names[..count].iter().zip(&ids) {
                assert_eq!(trie.child(ROOT, name), Some(*id), "{name}");
            }
            for other in ["request_iy", "request_correlation_c", "requ", "request_i"] {
                assert_eq!(trie.child(ROOT, other), None, "{other}");
            }
        }
    }

    #[test]
    fn tags_from_a_key_s_head_equal_tags_of_its_text() {
        // Whatever follows the key in the line is masked off.
        let line = "abcdefghijklmnop\"qrstuvwxyz_é.0123456789ü";
        for (start, segment) in segments(line) {
            let rest = &line.as_bytes()[start..];
            let mut head = [0xffu8; 8];
            let len = rest.len().min(8);
            head[..len].copy_from_slice(&rest[..len]);
            let head = u64::from_le_bytes(head);
            assert_eq!(
                tag_from_head(head, segment.len()),
                tag(segment),
                "{segment:?}"
            );
        }
    }
}
