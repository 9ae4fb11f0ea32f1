//! `/etc/os-release`: the distribution's `ID` and `VERSION_ID`.

use crate::Os;

/// Read the two fields; `None` without an `ID`.
pub fn parse(text: &str) -> Option<Os> {
    let (mut id, mut version) = (None, String::new());
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches(['"', '\'']).to_owned();
        match k.trim() {
            "ID" => id = Some(v),
            "VERSION_ID" => version = v,
            _ => {}
        }
    }
    Some(Os {
        id: id.filter(|i| !i.is_empty())?,
        version_id: version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_quoted_or_not() {
        let o =
            parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")
                .unwrap();
        assert_eq!((o.id.as_str(), o.version_id.as_str()), ("debian", "12"));
        assert!(parse("NAME=x").is_none());
    }
}
