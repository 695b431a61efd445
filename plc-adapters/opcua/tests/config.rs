//! The OPC UA tag map: what parses, and how each mistake is reported (file, item, field).

use remine_domain::Access;
use remine_opcua::{NodeAddress, OpcDataType, OpcUaConfig, OpcUaError, Security};

const SERVER: &str = "[[server]]\nname = \"dcs\"\nendpoint = \"opc.tcp://127.0.0.1:4840/\"\npki_dir = \"/tmp/pki\"\n";

fn tag(fields: &str) -> String {
    format!(
        "[[tag]]\nname = \"Line/Unit/Signal\"\nserver = \"dcs\"\nnamespace_uri = \"urn:plant\"\nnode_id = \"s=Unit.Signal\"\ndata_type = \"f64\"\n{fields}\n"
    )
}

/// Parses `toml` and expects an error whose message is exactly `expected`.
fn check(toml: &str, expected: &str) {
    match OpcUaConfig::from_toml_str(toml, "plant.toml") {
        Ok(_) => panic!("accepted, expected: {expected}\n---\n{toml}"),
        Err(e) => assert_eq!(e.to_string(), expected, "\n---\n{toml}"),
    }
}

fn with_tag(line: &str, replacement: &str) -> String {
    format!("{SERVER}{}", tag("").replace(line, replacement))
}

fn with_server(line: &str, replacement: &str) -> String {
    format!("{}{}", SERVER.replace(line, replacement), tag(""))
}

#[test]
fn a_duplicate_tag_name_is_refused() {
    check(
        &format!("{SERVER}{}{}", tag(""), tag("")),
        "plant.toml: tag 'Line/Unit/Signal': field 'name': duplicate tag name (first defined as tag #1)",
    );
}

#[test]
fn a_tag_on_an_unknown_server_is_refused() {
    check(
        &with_tag("server = \"dcs\"", "server = \"plc\""),
        "plant.toml: tag 'Line/Unit/Signal': field 'server': unknown server 'plc' (servers: dcs)",
    );
}

#[test]
fn a_node_needs_exactly_one_of_node_id_and_browse_path() {
    check(
        &with_tag("node_id = \"s=Unit.Signal\"", ""),
        "plant.toml: tag 'Line/Unit/Signal': field 'node_id': give 'node_id' or 'browse_path'",
    );
    check(
        &format!("{SERVER}{}", tag("browse_path = \"Unit/Signal\"")),
        "plant.toml: tag 'Line/Unit/Signal': field 'browse_path': give either 'node_id' or 'browse_path', not both",
    );
}

#[test]
fn malformed_node_ids_are_refused() {
    let check_id = |id: &str, why: &str| {
        check(
            &with_tag(
                "node_id = \"s=Unit.Signal\"",
                &format!("node_id = \"{id}\""),
            ),
            &format!("plant.toml: tag 'Line/Unit/Signal': field 'node_id': '{id}' {why}"),
        );
    };
    check_id("i=abc", "is not i=<number>");
    check_id("s=", "is not s=<string>, i=<number> or g=<guid>");
    check_id("x=1", "is not s=<string>, i=<number> or g=<guid>");
    check_id("g=not-a-guid", "is not g=<guid>");
    check_id(
        "ns=2;s=Unit.Signal",
        "carries a namespace index; give the identifier only (the index comes from namespace_uri)",
    );
}

#[test]
fn a_browse_path_with_an_empty_segment_is_refused() {
    check(
        &with_tag(
            "node_id = \"s=Unit.Signal\"",
            "browse_path = \"Unit//Signal\"",
        ),
        "plant.toml: tag 'Line/Unit/Signal': field 'browse_path': 'Unit//Signal' has an empty segment (expected Folder/Variable)",
    );
}

#[test]
fn an_unknown_data_type_is_refused() {
    check(
        &with_tag("data_type = \"f64\"", "data_type = \"double\""),
        "plant.toml: tag 'Line/Unit/Signal': field 'data_type': unknown data type 'double' (expected f64, f32, i32, u16, u32 or bool)",
    );
}

#[test]
fn limits_are_checked_like_the_modbus_ones() {
    check(
        &format!(
            "{SERVER}{}",
            tag("access = \"read_write\"\nmin = 90\nmax = 20")
        ),
        "plant.toml: tag 'Line/Unit/Signal': field 'min': min 90 is above max 20",
    );
    check(
        &format!("{SERVER}{}", tag("min = 20\nmax = 90")),
        "plant.toml: tag 'Line/Unit/Signal': field 'min': a write limit on a read-only tag: \
         set access = \"read_write\" or remove min/max",
    );
    check(
        &format!("{SERVER}{}", tag("access = \"read_write\"\nmax = 90")),
        "plant.toml: tag 'Line/Unit/Signal': field 'min': 'max' is given without 'min'",
    );
    check(
        &format!(
            "{}{}",
            SERVER,
            tag("access = \"read_write\"\nmin = 0\nmax = 1").replace("f64", "bool")
        ),
        "plant.toml: tag 'Line/Unit/Signal': field 'min': a bool has no write limits",
    );
}

#[test]
fn a_negative_deadband_is_refused() {
    check(
        &format!("{SERVER}{}", tag("deadband = -0.5")),
        "plant.toml: tag 'Line/Unit/Signal': field 'deadband': -0.5 is not a finite number >= 0",
    );
}

#[test]
fn server_mistakes_name_the_server_and_field() {
    check(
        &with_server(
            "endpoint = \"opc.tcp://127.0.0.1:4840/\"",
            "endpoint = \"http://127.0.0.1:4840/\"",
        ),
        "plant.toml: server 'dcs': field 'endpoint': 'http://127.0.0.1:4840/' is not opc.tcp://host:port/path",
    );
    check(
        &with_server("pki_dir", "security = \"aes\"\npki_dir"),
        "plant.toml: server 'dcs': field 'security': unknown security 'aes' (expected none or basic256sha256)",
    );
    check(
        &with_server("pki_dir", "username = \"remine\"\npki_dir"),
        "plant.toml: server 'dcs': field 'password': 'username' is given without a password",
    );
    check(
        &with_server("pki_dir", "password = \"x\"\npki_dir"),
        "plant.toml: server 'dcs': field 'username': a password is given without 'username'",
    );
    check(
        &with_server(
            "pki_dir",
            "username = \"remine\"\npassword = \"x\"\npassword_env = \"PATH\"\npki_dir",
        ),
        "plant.toml: server 'dcs': field 'password_env': give either 'password' or 'password_env', not both",
    );
    check(
        &with_server(
            "pki_dir",
            "username = \"remine\"\npassword_env = \"REMINE_TEST_SURELY_UNSET_VARIABLE\"\npki_dir",
        ),
        "plant.toml: server 'dcs': field 'password_env': environment variable 'REMINE_TEST_SURELY_UNSET_VARIABLE' is not set",
    );
    check(
        &with_server("pki_dir", "request_timeout_ms = 5\npki_dir"),
        "plant.toml: server 'dcs': field 'request_timeout_ms': 5 is outside 100..=120000",
    );
    check(
        &format!("{SERVER}{SERVER}"),
        "plant.toml: server 'dcs': field 'name': duplicate server name",
    );
}

#[test]
fn the_password_never_prints() {
    let toml = with_server(
        "pki_dir",
        "username = \"remine\"\npassword = \"hunter2-secret\"\npki_dir",
    );
    let config = OpcUaConfig::from_toml_str(&toml, "plant.toml").expect("valid");
    let printed = format!("{config:?}");
    assert!(!printed.contains("hunter2-secret"), "{printed}");
    let credentials = config.servers()[0].credentials().expect("credentials");
    assert_eq!(credentials.username(), "remine");
    assert_eq!(credentials.password().expose(), "hunter2-secret");
    assert_eq!(credentials.password().to_string(), "****");
}

#[test]
fn unknown_fields_and_bad_toml_name_the_file() {
    let err =
        OpcUaConfig::from_toml_str(&format!("{SERVER}{}", tag("sampling_ms = 5")), "plant.toml")
            .unwrap_err();
    assert!(matches!(err, OpcUaError::Syntax { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("plant.toml: ") && err.to_string().contains("sampling_ms"),
        "{err}"
    );
    let err = OpcUaConfig::from_toml_str("[[server]\n", "plant.toml").unwrap_err();
    assert!(err.to_string().starts_with("plant.toml: "), "{err}");
}

#[test]
fn from_file_names_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("opcua.toml");
    let err = OpcUaConfig::from_file(&path).unwrap_err();
    assert!(
        matches!(err, OpcUaError::Io { .. }) && err.to_string().contains("opcua.toml"),
        "{err}"
    );
    std::fs::write(
        &path,
        with_tag("data_type = \"f64\"", "data_type = \"f16\""),
    )
    .expect("write");
    let err = OpcUaConfig::from_file(&path).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: tag 'Line/Unit/Signal': field 'data_type'",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn defaults_fill_what_a_map_leaves_out() {
    let config =
        OpcUaConfig::from_toml_str(&format!("{SERVER}{}", tag("")), "plant.toml").expect("valid");
    let s = &config.servers()[0];
    assert_eq!(
        (
            s.security(),
            s.credentials().is_none(),
            s.trust_server_certs()
        ),
        (Security::None, true, false)
    );
    assert_eq!(
        (
            s.request_timeout().as_millis(),
            s.session_timeout().as_millis(),
            s.publishing_interval().as_millis()
        ),
        (5000, 60_000, 500)
    );
    let t = &config.tags()[0];
    assert_eq!(t.address(), &NodeAddress::NodeId("s=Unit.Signal".into()));
    assert_eq!(
        (t.data_type(), t.access(), t.limits(), t.deadband()),
        (OpcDataType::F64, Access::Read, None, None)
    );
    assert_eq!(t.sampling_interval().as_millis(), 250);
}

/// The complete example in plc-adapters/README.md parses (its password comes
/// from the environment: point it at a variable every machine has).
#[test]
fn the_readme_example_parses() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("<!-- opcua-example -->")
        .expect("README marks its OPC UA example");
    let block = &readme[start..];
    let body = &block[block.find("```toml\n").expect("a toml block") + 8..];
    let body = &body[..body.find("```").expect("a closed block")];
    let body = body.replace(
        "password_env = \"REMINE_OPCUA_PASSWORD\"",
        "password_env = \"PATH\"",
    );
    let config = OpcUaConfig::from_toml_str(&body, "README.md").expect("README example");
    assert_eq!(config.servers()[0].security(), Security::Basic256Sha256);
    assert!(config.tags().len() >= 4);
    assert!(matches!(config.tags()[1].address(), NodeAddress::BrowsePath(p) if p.len() == 2));
}

// ---- subscription groups, comms alarm ------------------------------------------

const GROUPS: &str = "[[server.group]]\nname = \"fast\"\npublishing_interval_ms = 100\nsampling_interval_ms = 50\n\
                      [[server.group]]\nname = \"slow\"\npublishing_interval_ms = 10000\n";

#[test]
fn tags_name_a_group_and_take_its_sampling_interval_unless_they_give_one() {
    let toml = format!(
        "{SERVER}{GROUPS}{}{}{}",
        tag("group = \"fast\""),
        tag("group = \"fast\"\nsampling_interval_ms = 20").replace("Signal", "Own"),
        tag("group = \"slow\"").replace("Signal", "Slow"),
    );
    let config = OpcUaConfig::from_toml_str(&toml, "plant.toml").unwrap();
    let groups: Vec<(&str, u128, Option<u128>)> = config.servers()[0]
        .groups()
        .iter()
        .map(|g| {
            (
                g.name(),
                g.publishing_interval().as_millis(),
                g.sampling_interval().map(|d| d.as_millis()),
            )
        })
        .collect();
    assert_eq!(groups, [("fast", 100, Some(50)), ("slow", 10_000, None)]);
    let tags: Vec<(Option<usize>, u128)> = config
        .tags()
        .iter()
        .map(|t| (t.group_index(), t.sampling_interval().as_millis()))
        .collect();
    assert_eq!(tags, [(Some(0), 50), (Some(0), 20), (Some(1), 250)]);
}

#[test]
fn an_unknown_group_names_the_tag_and_the_groups_there_are() {
    check(
        &format!("{SERVER}{GROUPS}{}", tag("group = \"medium\"")),
        "plant.toml: tag 'Line/Unit/Signal': field 'group': unknown group 'medium' of server 'dcs' \
         (groups: fast, slow)",
    );
    check(
        &format!("{SERVER}{}", tag("group = \"fast\"")),
        "plant.toml: tag 'Line/Unit/Signal': field 'group': unknown group 'fast' of server 'dcs' \
         (it has none: add a [[server.group]] or remove 'group')",
    );
}

#[test]
fn groups_are_unique_named_and_their_intervals_in_range() {
    check(
        &format!(
            "{SERVER}{GROUPS}[[server.group]]\nname = \"fast\"\npublishing_interval_ms = 200\n"
        ),
        "plant.toml: server 'dcs' group 'fast': field 'name': duplicate group name on server 'dcs'",
    );
    check(
        &format!("{SERVER}[[server.group]]\nname = \"fast\"\npublishing_interval_ms = 5\n"),
        "plant.toml: server 'dcs' group 'fast': field 'publishing_interval_ms': 5 is outside 10..=3600000",
    );
    check(
        &format!(
            "{SERVER}[[server.group]]\nname = \"fast\"\npublishing_interval_ms = 100\nsampling_interval_ms = -1\n"
        ),
        "plant.toml: server 'dcs' group 'fast': field 'sampling_interval_ms': -1 is outside 0..=3600000",
    );
    check(
        &format!("{SERVER}[[server.group]]\nname = \"\"\npublishing_interval_ms = 100\n"),
        "plant.toml: server 'dcs' group '': field 'name': a group name is letters, digits, '_', '-' \
         and '.', not empty",
    );
}

#[test]
fn the_comms_alarm_delay_is_zero_by_default_and_at_most_an_hour() {
    let config = OpcUaConfig::from_toml_str(&format!("{SERVER}{}", tag("")), "plant.toml").unwrap();
    assert!(config.servers()[0].comms_alarm_delay().is_zero());
    check(
        &format!("{SERVER}comms_alarm_delay_ms = 3600001\n{}", tag("")),
        "plant.toml: server 'dcs': field 'comms_alarm_delay_ms': 3600001 is outside 0..=3600000",
    );
}

#[test]
fn a_subscription_holds_at_most_1000_items_by_default_and_the_limit_is_set_per_server() {
    let config = OpcUaConfig::from_toml_str(&format!("{SERVER}{}", tag("")), "plant.toml").unwrap();
    assert_eq!(config.servers()[0].max_items_per_subscription(), 1000);
    let config = OpcUaConfig::from_toml_str(
        &format!("{SERVER}max_items_per_subscription = 250\n{}", tag("")),
        "plant.toml",
    )
    .unwrap();
    assert_eq!(config.servers()[0].max_items_per_subscription(), 250);
    check(
        &format!("{SERVER}max_items_per_subscription = 0\n{}", tag("")),
        "plant.toml: server 'dcs': field 'max_items_per_subscription': 0 is outside 1..=100000",
    );
    check(
        &format!("{SERVER}max_items_per_subscription = 100001\n{}", tag("")),
        "plant.toml: server 'dcs': field 'max_items_per_subscription': 100001 is outside 1..=100000",
    );
}
