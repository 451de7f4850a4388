//! Column alignment like kubectl's tabwriter (minimum cell width 6, padding 3, left-aligned, the last
//! column unpadded). Widths are remembered across calls, so rows printed later by `get -w` line up with
//! the table printed first.

const MIN_WIDTH: usize = 6;
const PADDING: usize = 3;

#[derive(Debug, Default)]
pub struct Table {
    widths: Vec<usize>,
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// Formats `rows` (each a line of cells), widening columns as needed. Returns the text, one line
    /// per row, each ending in a newline.
    pub fn format(&mut self, rows: &[Vec<String>]) -> String {
        for row in rows {
            // The last cell of a line is not part of a column.
            for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
                let w = (cell.chars().count() + PADDING).max(MIN_WIDTH);
                if i >= self.widths.len() {
                    self.widths.resize(i + 1, 0);
                }
                self.widths[i] = self.widths[i].max(w);
            }
        }
        let mut out = String::new();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < row.len() {
                    let pad = self.widths[i] - cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pads_like_kubectl() {
        let mut t = Table::new();
        let out = t.format(&[
            row(&["NAME", "DATA", "AGE"]),
            row(&["a", "1", "5s"]),
            row(&["longer-name", "10", "3m"]),
        ]);
        assert_eq!(
            out,
            "NAME          DATA   AGE\n\
             a             1      5s\n\
             longer-name   10     3m\n"
        );
    }

    #[test]
    fn remembers_widths_and_grows() {
        let mut t = Table::new();
        t.format(&[row(&["NAME", "AGE"]), row(&["abc", "1s"])]);
        assert_eq!(t.format(&[row(&["x", "2s"])]), "x      2s\n");
        assert_eq!(t.format(&[row(&["a-much-longer-one", "2s"])]), "a-much-longer-one   2s\n");
    }
}
