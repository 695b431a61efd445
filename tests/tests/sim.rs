//! `remine sim` from outside: the simulator runs alone on the ports it is
//! given, a Modbus client reads it, and `remine sim fault/faults/clear`
//! change what that client sees through the control endpoint.

use remine_system_tests::{Running, free_port, run};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_modbus::client::{Reader, tcp};
use tokio_modbus::prelude::{ExceptionCode, Slave};

const LIMIT: Duration = Duration::from_secs(60);

async fn read_time(addr: SocketAddr) -> Result<Vec<u16>, String> {
    let mut ctx = tcp::connect_slave(addr, Slave(1))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(5), ctx.read_input_registers(0, 3)).await {
        Err(_) => Err("no answer".into()),
        Ok(Err(e)) => Err(format!("transport: {e}")),
        Ok(Ok(Err(code))) => Err(format!("exception: {code:?}")),
        Ok(Ok(Ok(w))) => Ok(w),
    }
}

#[tokio::test]
async fn remine_sim_serves_the_plant_and_its_faults_reach_a_modbus_client() {
    let dir = tempfile::tempdir().expect("temp dir");
    let [d, m, h, c] = [free_port(), free_port(), free_port(), free_port()];
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let truth = dir.path().join("truth.jsonl");
    let pki = dir.path().join("pki");
    let mut sim = Running::start(&[
        "sim",
        "--discharge",
        &addr(d),
        "--mechanical",
        &addr(m),
        "--hydromet",
        &addr(h),
        "--control",
        &addr(c),
        "--speed",
        "50",
        "--seed",
        "3",
        "--pki",
        pki.to_str().expect("utf-8 path"),
        "--truth",
        truth.to_str().expect("utf-8 path"),
    ]);
    assert!(
        sim.wait_for_line("control", LIMIT).is_some(),
        "remine sim did not start: {:#?}",
        sim.output()
    );
    let discharge: SocketAddr = addr(d).parse().expect("addr");
    let words = read_time(discharge)
        .await
        .expect("the discharge line answers");
    assert_eq!(words[2], 4, "four stations by default");

    let control = format!("http://{}", addr(c));
    let (code, out, err) = run(
        &[
            "sim",
            "fault",
            "exception",
            "--line",
            "discharge",
            "--code",
            "4",
            "--control",
            &control,
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("fault 1 injected"), "{out}");
    assert_eq!(
        read_time(discharge).await,
        Err(format!(
            "exception: {:?}",
            ExceptionCode::ServerDeviceFailure
        ))
    );

    let (code, out, _) = run(&["sim", "faults", "--control", &control], None);
    assert_eq!(code, 0);
    assert!(
        out.contains("exception") && out.contains("until cleared"),
        "{out}"
    );

    let (code, out, err) = run(&["sim", "clear", "--control", &control], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 faults cleared"), "{out}");
    assert!(read_time(discharge).await.is_ok(), "answers again");

    let (code, _, err) = run(&["sim", "fault", "melt", "--control", &control], None);
    assert_ne!(code, 0);
    assert!(err.contains("kind = melt"), "{err}");
    let (code, _, err) = run(
        &[
            "sim",
            "fault",
            "freeze",
            "--line",
            "mechanical",
            "--signal",
            "warp_core",
            "--control",
            &control,
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("warp_core"),
        "the endpoint's reason is shown: {err}"
    );

    assert_eq!(
        sim.interrupt(Duration::from_secs(20)),
        Some(0),
        "stops cleanly on Ctrl-C"
    );
    assert!(truth.is_file(), "the ground-truth file was created");
}

#[test]
fn remine_sim_refuses_a_speed_beyond_1000_and_names_an_unreachable_endpoint() {
    let (code, _, err) = run(&["sim", "--speed", "5000"], None);
    assert_ne!(code, 0);
    assert!(err.contains("5000"), "{err}");
    let url = format!("http://127.0.0.1:{}", free_port());
    let (code, _, err) = run(&["sim", "faults", "--control", &url], None);
    assert_ne!(code, 0);
    assert!(err.contains(&url), "the error names the endpoint: {err}");
}
