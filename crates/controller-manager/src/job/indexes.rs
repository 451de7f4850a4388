//! Sets of completion indexes as ordered, disjoint intervals, the form of an Indexed Job's
//! `status.completedIndexes` (`"0-3,5"`): parsing (dropping what is out of range, as Kubernetes does),
//! printing, adding indexes, and picking the lowest indexes not yet taken.

use std::fmt;

/// Ordered, non-overlapping, non-adjacent inclusive intervals of indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i32, i32)>);

impl Intervals {
    /// Parses `"1,3-5,7"`, keeping only indexes below `completions`; malformed parts are skipped
    /// (Kubernetes logs and ignores them too).
    pub fn parse(s: &str, completions: i32) -> Intervals {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let range = match part.split_once('-') {
                Some((a, b)) => a.parse::<i32>().ok().zip(b.parse::<i32>().ok()),
                None => part.parse::<i32>().ok().map(|a| (a, a)),
            };
            let Some((first, last)) = range.filter(|(a, b)| *a >= 0 && a <= b) else { continue };
            if first >= completions {
                continue;
            }
            out.push((first, last.min(completions - 1)));
        }
        Intervals::normalized(out)
    }

    /// Sorts and merges overlapping or adjacent intervals.
    fn normalized(mut v: Vec<(i32, i32)>) -> Intervals {
        v.sort_unstable();
        let mut out: Vec<(i32, i32)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Intervals(out)
    }

    /// These intervals plus `indexes`.
    pub fn with(&self, indexes: impl IntoIterator<Item = i32>) -> Intervals {
        let mut v = self.0.clone();
        v.extend(indexes.into_iter().map(|i| (i, i)));
        Intervals::normalized(v)
    }

    /// These intervals plus `other`'s.
    pub fn merge(&self, other: &Intervals) -> Intervals {
        let mut v = self.0.clone();
        v.extend(other.0.iter().copied());
        Intervals::normalized(v)
    }

    pub fn has(&self, ix: i32) -> bool {
        self.0.iter().any(|(a, b)| *a <= ix && ix <= *b)
    }

    /// How many indexes.
    pub fn total(&self) -> i32 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// How many of these indexes `other` has too.
    pub fn overlap(&self, other: &Intervals) -> i32 {
        let mut n = 0;
        for &(a, b) in &self.0 {
            for &(c, d) in &other.0 {
                n += (b.min(d) - a.max(c) + 1).max(0);
            }
        }
        n
    }

    /// The `count` lowest indexes below `completions` that are not in these intervals.
    pub fn first_missing(&self, count: usize, completions: i32) -> Vec<i32> {
        let mut out = Vec::with_capacity(count);
        let mut candidate = 0;
        for &(a, b) in &self.0 {
            while candidate < completions && out.len() < count && candidate < a {
                out.push(candidate);
                candidate += 1;
            }
            candidate = candidate.max(b.saturating_add(1));
        }
        while candidate < completions && out.len() < count {
            out.push(candidate);
            candidate += 1;
        }
        out
    }
}

impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_merges() {
        let i = Intervals::parse("5,0-3,x,2-1,9-12", 11);
        assert_eq!(i.to_string(), "0-3,5,9-10");
        assert_eq!(i.total(), 7);
        assert!(i.has(10) && !i.has(4) && !i.has(11));
        assert_eq!(i.with([4, 8]).to_string(), "0-5,8-10");
        assert_eq!(Intervals::default().with([3, 1, 2, 7]).to_string(), "1-3,7");
        assert_eq!(Intervals::parse("", 3), Intervals::default());
        assert_eq!(Intervals::parse("0,1,2", 3).to_string(), "0-2");
        assert_eq!(i.merge(&Intervals::parse("4,6-8", 11)).to_string(), "0-10");
    }

    #[test]
    fn first_missing_skips_taken_indexes() {
        let taken = Intervals::parse("0-1,3,6-7", 10);
        assert_eq!(taken.first_missing(3, 10), [2, 4, 5]);
        assert_eq!(taken.first_missing(10, 10), [2, 4, 5, 8, 9]);
        assert_eq!(taken.first_missing(10, 5), [2, 4]);
        assert_eq!(Intervals::default().first_missing(2, 5), [0, 1]);
        assert!(taken.first_missing(0, 10).is_empty());
    }
}
