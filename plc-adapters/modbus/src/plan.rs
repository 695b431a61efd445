//! The poll plan: a device's tags coalesced into as few read requests as the PDU allows.
//!
//! Tags of one table are sorted by address; a tag joins the current request
//! when it starts at most `max_gap` registers (or bits) after the request's end
//! and the request stays within 125 registers (2000 bits). Overlapping tags
//! (aliases, bits of one register) share a request. Each poll group of a
//! device has its own plan: requests never mix tags of two groups.

use crate::config::{MAX_READ_BITS, MAX_READ_REGISTERS, ModbusConfig, Table};

/// One read request and the tags it serves.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block {
    pub(crate) table: Table,
    pub(crate) start: u16,
    pub(crate) count: u16,
    /// Indices into [`ModbusConfig::tags`].
    pub(crate) tags: Vec<usize>,
}

/// The read requests of one poll cycle of `group` of `device` (`None`: the
/// tags that name no poll group).
pub(crate) fn plan(config: &ModbusConfig, device: usize, group: Option<usize>) -> Vec<Block> {
    let max_gap = config
        .devices()
        .get(device)
        .map_or(0, |d| u32::from(d.max_gap()));
    let mut spans: Vec<(Table, u32, u32, usize)> = config
        .tags()
        .iter()
        .enumerate()
        .filter(|(_, t)| t.device_index() == device && t.poll_group_index() == group)
        .map(|(i, t)| {
            let start = u32::from(t.address());
            (t.table(), start, start + u32::from(t.width()), i)
        })
        .collect();
    spans.sort_by_key(|&(table, start, end, i)| (table, start, end, i));

    // (table, start, end exclusive, tags)
    let mut blocks: Vec<(Table, u32, u32, Vec<usize>)> = Vec::new();
    for (table, start, end, i) in spans {
        let limit = u32::from(if table.is_register() {
            MAX_READ_REGISTERS
        } else {
            MAX_READ_BITS
        });
        if let Some(last) = blocks.last_mut()
            && last.0 == table
            && start <= last.2 + max_gap
            && end.max(last.2) - last.1 <= limit
        {
            last.2 = end.max(last.2);
            last.3.push(i);
            continue;
        }
        blocks.push((table, start, end, vec![i]));
    }
    blocks
        .into_iter()
        .map(|(table, start, end, tags)| Block {
            table,
            // Addresses and widths were checked to stay within 0..=65535 and
            // a block within 2000, so these conversions are exact.
            start: u16::try_from(start).unwrap_or(u16::MAX),
            count: u16::try_from(end - start).unwrap_or(0),
            tags,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(tags: &str, max_gap: u32, expected: &[(Table, u16, u16)]) {
        let text = format!(
            "[[device]]\nname = \"d\"\naddress = \"127.0.0.1:502\"\nunit_id = 1\nmax_gap = {max_gap}\n{tags}"
        );
        let config = ModbusConfig::from_toml_str(&text, "plan.toml").unwrap();
        let got: Vec<(Table, u16, u16)> = plan(&config, 0, None)
            .iter()
            .map(|b| (b.table, b.start, b.count))
            .collect();
        assert_eq!(got, expected, "tags:\n{tags}");
    }

    fn tag(n: usize, table: &str, address: u32, ty: &str) -> String {
        format!(
            "[[tag]]\nname = \"L/U/T{n}\"\ndevice = \"d\"\ntable = \"{table}\"\naddress = {address}\ntype = \"{ty}\"\n"
        )
    }

    fn many(count: usize, table: &str, ty: &str, step: u32) -> String {
        (0..count)
            .map(|i| tag(i, table, i as u32 * step, ty))
            .collect()
    }

    #[test]
    fn contiguous_registers_merge_into_one_read() {
        check(
            &many(10, "holding", "u16", 1),
            0,
            &[(Table::Holding, 0, 10)],
        );
    }

    #[test]
    fn two_hundred_registers_need_two_reads_of_at_most_125() {
        check(
            &many(200, "holding", "u16", 1),
            0,
            &[(Table::Holding, 0, 125), (Table::Holding, 125, 75)],
        );
    }

    #[test]
    fn a_32_bit_value_is_never_split_across_reads() {
        check(
            &many(70, "input", "f32", 2),
            0,
            &[(Table::Input, 0, 124), (Table::Input, 124, 16)],
        );
    }

    #[test]
    fn a_gap_splits_reads_unless_max_gap_bridges_it() {
        let tags = format!(
            "{}{}",
            tag(1, "holding", 0, "u16"),
            tag(2, "holding", 5, "u16")
        );
        check(&tags, 0, &[(Table::Holding, 0, 1), (Table::Holding, 5, 1)]);
        check(&tags, 3, &[(Table::Holding, 0, 1), (Table::Holding, 5, 1)]);
        check(&tags, 4, &[(Table::Holding, 0, 6)]);
    }

    #[test]
    fn tables_are_read_separately() {
        let tags = format!(
            "{}{}{}",
            tag(1, "holding", 0, "u16"),
            tag(2, "input", 1, "u16"),
            tag(3, "coil", 2, "bool")
        );
        check(
            &tags,
            10,
            &[
                (Table::Holding, 0, 1),
                (Table::Input, 1, 1),
                (Table::Coil, 2, 1),
            ],
        );
    }

    #[test]
    fn bits_coalesce_up_to_2000_per_read() {
        check(
            &many(2100, "coil", "bool", 1),
            0,
            &[(Table::Coil, 0, 2000), (Table::Coil, 2000, 100)],
        );
    }

    #[test]
    fn each_poll_group_is_planned_on_its_own() {
        let text = "[[device]]\nname = \"d\"\naddress = \"127.0.0.1:502\"\nunit_id = 1\n\
                    [[device.poll_group]]\nname = \"fast\"\ninterval_ms = 50\n"
            .to_string()
            + &tag(1, "holding", 0, "u16")
            + &tag(2, "holding", 1, "u16")
            + "poll_group = \"fast\"\n"
            + &tag(3, "holding", 2, "u16");
        let config = ModbusConfig::from_toml_str(&text, "plan.toml").unwrap();
        let spans = |group| -> Vec<(u16, u16, Vec<usize>)> {
            plan(&config, 0, group)
                .into_iter()
                .map(|b| (b.start, b.count, b.tags))
                .collect()
        };
        assert_eq!(spans(None), vec![(0, 1, vec![0]), (2, 1, vec![2])]);
        assert_eq!(spans(Some(0)), vec![(1, 1, vec![1])]);
    }

    #[test]
    fn aliases_share_one_read() {
        let tags = "[[tag]]\nname = \"L/U/A\"\ndevice = \"d\"\ntable = \"holding\"\naddress = 3\ntype = \"bool\"\nbit = 0\n\
                    [[tag]]\nname = \"L/U/B\"\ndevice = \"d\"\ntable = \"holding\"\naddress = 3\ntype = \"bool\"\nbit = 7\n";
        check(tags, 0, &[(Table::Holding, 3, 1)]);
    }
}
