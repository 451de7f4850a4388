//! Column alignment like kubectl's tabwriter (minimum cell width 6, padding 3, left-aligned, the last
//! column unpadded). Widths are remembered across calls, so rows printed later by `get -w` line up with
//! the table printed first. [`tabbed`] is Go's tabwriter as kubectl's describe uses it (`tabbedString`).

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

/// Go's `text/tabwriter` as kubectl's describers configure it (no minimum width, padding 2): every
/// tab-terminated cell is padded to the widest cell of its column block (the run of adjacent lines
/// that have a cell in that column); the text after a line's last tab is not aligned.
pub fn tabbed(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    format_block(&lines, 0, lines.len(), &mut Vec::new(), &mut out);
    out
}

/// Go's `Writer.format`: lines `from..to` whose columns before `widths.len()` are sized.
fn format_block(lines: &[Vec<&str>], from: usize, to: usize, widths: &mut Vec<usize>, out: &mut String) {
    let column = widths.len();
    let (mut start, mut this) = (from, from);
    while this < to {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(&lines[start..this], widths, out);
        start = this;
        let mut width = 0;
        while this < to && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + 2);
            this += 1;
        }
        widths.push(width);
        format_block(lines, start, this, widths, out);
        widths.pop();
        start = this;
    }
    write_lines(&lines[start..to], widths, out);
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], out: &mut String) {
    for cells in lines {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < cells.len() && j < widths.len() {
                out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(cell.chars().count())));
            }
        }
        out.push('\n');
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
    fn tabbed_aligns_column_blocks_like_go() {
        let out = tabbed(
            "Name:\tlimits\nNamespace:\tdefault\nType\tResource\tMin\n----\t--------\t---\nContainer\tcpu\t-\n",
        );
        assert_eq!(
            out,
            "Name:       limits\n\
             Namespace:  default\n\
             Type        Resource  Min\n\
             ----        --------  ---\n\
             Container   cpu       -\n"
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
