//! The pure models, without servers: the curves, kinetics and balances the
//! domain brief gives, and the time budgets the demo needs.

use remine_domain::Element;
use remine_domain::{Chemistry, UnitState};
use remine_sim::Noise;
use remine_sim::model::discharge::{LoadedUnit, Station, ocv_per_cell};
use remine_sim::model::hydromet::{
    BatchDraws, HydroUnit, HydrometTrain, LeachCharge, leach_rate_per_min,
};
use remine_sim::model::material::{Material, ShredOutput, ShredPartition, draw_pack};
use remine_sim::model::mechanical::{Charge, InertVessel, ShredderLine};

fn check_ocv(chemistry: Chemistry, soc: f64, volts: f64) {
    let got = ocv_per_cell(chemistry, soc);
    assert!(
        (got - volts).abs() < 1e-9,
        "{chemistry} at SOC {soc}: {got} V, expected {volts} V"
    );
}

#[test]
fn ocv_hits_the_table_points_of_the_brief() {
    check_ocv(Chemistry::Nmc811, 0.0, 2.51);
    check_ocv(Chemistry::Nmc811, 0.457, 3.70);
    check_ocv(Chemistry::Nmc811, 1.0, 4.19);
    check_ocv(Chemistry::Lfp, 0.297, 3.28);
    check_ocv(Chemistry::Lfp, 1.0, 3.60);
}

#[test]
fn ocv_interpolates_linearly_between_points() {
    check_ocv(
        Chemistry::Nmc622,
        (0.292 + 0.457) / 2.0,
        (3.57 + 3.70) / 2.0,
    );
    check_ocv(Chemistry::Lfp, (0.089 + 0.297) / 2.0, (3.19 + 3.28) / 2.0);
}

#[test]
fn nca_and_lmo_use_the_nmc_curve() {
    check_ocv(Chemistry::Nca, 0.834, 4.06);
    check_ocv(Chemistry::Lmo, 0.151, 3.42);
}

#[test]
fn over_discharge_falls_linearly_to_zero_volt_at_minus_three_percent() {
    check_ocv(Chemistry::Nmc111, -0.015, 2.51 / 2.0);
    check_ocv(Chemistry::Nmc111, -0.03, 0.0);
    check_ocv(Chemistry::Nmc111, -0.5, 0.0);
    check_ocv(Chemistry::Nmc111, 1.5, 4.19);
}

fn check_rate(temp_c: f64, per_min: f64) {
    let k = leach_rate_per_min(temp_c, 2.0);
    assert!(
        (k / per_min - 1.0).abs() < 0.05,
        "k({temp_c} C) = {k}/min, brief says {per_min}/min"
    );
}

#[test]
fn leach_kinetics_match_the_calibration_of_the_brief() {
    check_rate(75.0, 0.077);
    check_rate(40.0, 0.0135);
    check_rate(60.0, 0.038);
    check_rate(80.0, 0.096);
}

#[test]
fn ninety_nine_percent_dissolves_in_sixty_minutes_at_75_c() {
    let x = 1.0 - (-leach_rate_per_min(75.0, 2.0) * 60.0).exp();
    assert!((x - 0.99).abs() < 0.002, "{x}");
}

#[test]
fn weaker_acid_leaches_slower() {
    assert!(leach_rate_per_min(75.0, 1.0) < leach_rate_per_min(75.0, 2.0));
}

#[test]
fn purging_to_three_percent_o2_takes_about_1_94_volume_changes() {
    let mut v = InertVessel::in_air(12.0);
    let flow = 200.0;
    let mut t = 0.0;
    while v.o2_pct > 3.0 {
        v.step(flow, 0.0, 0.0, 1.0);
        t += 1.0;
    }
    let changes = flow * t / 3600.0 / 12.0;
    assert!((changes - 1.94).abs() < 0.02, "{changes} volume changes");
}

#[test]
fn a_leak_keeps_the_purged_chamber_above_zero_o2() {
    let mut v = InertVessel::in_air(12.0);
    for _ in 0..20_000 {
        v.step(200.0, 0.0, 2.0, 1.0);
    }
    let steady = 2.0 * 20.9 / 202.0;
    assert!((v.o2_pct - steady).abs() < 1e-3, "{}", v.o2_pct);
}

fn loaded_station(seed: u64) -> Station {
    let mut s = Station::new(Noise::new(seed, 7));
    let pack = LoadedUnit {
        chemistry_code: 4,
        cells_in_series: 96,
        capacity_ah: 282.0,
        unit_mass_kg: 500.0,
    };
    assert_eq!(s.set_unit(pack), Ok(()));
    s
}

fn run_until(s: &mut Station, state: UnitState, limit_s: f64) -> f64 {
    let mut t = 0.0;
    while s.state() != state && t < limit_s {
        s.step(1.0);
        t += 1.0;
    }
    t
}

#[test]
fn a_500_kg_pack_discharges_within_thirty_simulated_minutes() {
    for seed in 1..=20 {
        let mut s = loaded_station(seed);
        let soc = s.soc();
        assert!((0.10..=0.40).contains(&soc), "arrival SOC {soc}");
        assert_eq!(s.command(1), Ok(()));
        let t = run_until(&mut s, UnitState::Complete, 4000.0);
        assert!(t <= 1800.0, "seed {seed}: SOC {soc:.2} took {t} s");
        let r = *s.readings();
        assert!(
            r.cell_voltage_v < 1.05,
            "seed {seed}: {} V/cell",
            r.cell_voltage_v
        );
        assert!(r.energy_kwh > 0.0);
        assert!(
            r.max_cell_temp_c < 55.0,
            "seed {seed}: {} C",
            r.max_cell_temp_c
        );
    }
}

#[test]
fn a_discharged_pack_rebounds_within_an_hour_more_the_deeper_it_was_discharged() {
    for seed in 1..=10 {
        let mut s = loaded_station(seed);
        let soc = s.soc();
        assert_eq!(s.command(1), Ok(()));
        run_until(&mut s, UnitState::Complete, 4000.0);
        let at_end = s.readings().cell_voltage_v;
        for _ in 0..3600 {
            s.step(1.0);
        }
        let rebound = s.readings().cell_voltage_v - at_end;
        let least = if soc >= 0.2 { 0.1 } else { 0.05 };
        assert!(
            (least..=0.5).contains(&rebound),
            "seed {seed}, SOC {soc:.2}: rebound {rebound} V/cell"
        );
    }
}

#[test]
fn an_overheating_station_holds_by_itself() {
    let mut s = loaded_station(4);
    let mut sp = *s.setpoints();
    sp.max_cell_temp_c = s.readings().max_cell_temp_c + 2.0;
    s.set_setpoints(sp);
    assert_eq!(s.command(1), Ok(()));
    run_until(&mut s, UnitState::Held, 1800.0);
    assert_eq!(s.state(), UnitState::Held);
    assert!(s.readings().current_a.abs() < 0.5);
}

#[test]
fn start_is_refused_until_a_unit_is_described() {
    let mut s = Station::new(Noise::new(1, 7));
    assert_eq!(s.command(1), Ok(()));
    assert_eq!(s.state(), UnitState::Idle);
    assert_eq!(s.control().rejected(), 1);
}

fn check_conserved(what: &str, input: &Material, parts: &[Material]) {
    let sum = parts.iter().fold(Material::NONE, |a, m| a.plus(m));
    for e in Element::ALL {
        let (i, o) = (input.element(e), sum.element(e));
        assert!(
            (i - o).abs() <= 1e-9 * i.max(1.0),
            "{what}: {} in {i} kg, out {o} kg",
            e.symbol()
        );
    }
    assert!((input.total() - sum.total()).abs() <= 1e-9 * input.total().max(1.0));
}

#[test]
fn a_drawn_pack_weighs_its_declared_mass_with_the_brief_s_make_up() {
    let mut n = Noise::new(9, 1);
    for chemistry in Chemistry::ALL {
        for _ in 0..50 {
            let pack = draw_pack(chemistry, 500.0, &mut n).material();
            assert!(
                (pack.total() - 500.0).abs() < 1e-9,
                "{chemistry}: {}",
                pack.total()
            );
            let cu = pack.fraction(Element::Cu);
            assert!((0.04..=0.11).contains(&cu), "{chemistry}: Cu {cu}");
            let li = pack.fraction(Element::Li);
            assert!((0.010..=0.026).contains(&li), "{chemistry}: Li {li}");
            if chemistry == Chemistry::Nmc811 {
                let ni = pack.fraction(Element::Ni);
                assert!((0.11..=0.15).contains(&ni), "NMC811 Ni {ni}");
            }
        }
    }
}

#[test]
fn shredding_conserves_every_element_and_black_mass_is_32_to_48_percent_of_a_pack() {
    let mut n = Noise::new(9, 2);
    for chemistry in Chemistry::ALL {
        for _ in 0..50 {
            let pack = draw_pack(chemistry, 1000.0, &mut n);
            let outputs = ShredPartition::draw(&mut n).apply(&pack);
            check_conserved(chemistry.name(), &pack.material(), &outputs);
            let bm = outputs[0].total() / 1000.0;
            assert!((0.32..=0.48).contains(&bm), "{chemistry}: black mass {bm}");
            let cu_in_bm = outputs[0].fraction(Element::Cu);
            assert!(cu_in_bm <= 0.02, "{chemistry}: Cu in black mass {cu_in_bm}");
            assert!(outputs.iter().all(|o| o.total() >= 0.0));
        }
    }
    assert_eq!(ShredOutput::ALL[0].name(), "black_mass");
}

#[test]
fn a_split_gives_its_last_part_the_remainder_so_nothing_is_lost() {
    let m = Material::of(&[(Element::Ni, 1.0 / 3.0), (Element::Li, 0.1)], 7.0);
    for shares in [
        [0.1, 0.2, 0.7],
        [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
        [0.0, 0.0, 1.0],
    ] {
        let parts = m.split(shares);
        check_conserved("split", &m, &parts);
    }
}

#[test]
fn a_two_tonne_charge_is_shredded_in_about_forty_simulated_minutes() {
    let mut line = ShredderLine::new(Noise::new(5, 2));
    assert_eq!(
        line.set_charge(Charge {
            mass_kg: 2000.0,
            chemistry_code: 3
        }),
        Ok(())
    );
    assert_eq!(line.command(1), Ok(()));
    let request = line.take_feed_request().expect("Start asks for the charge");
    assert_eq!(request.declared_kg, 2000.0);
    let pack = draw_pack(Chemistry::Nmc622, 2000.0, &mut Noise::new(5, 3));
    line.supply(pack);
    let mut t = 0.0;
    let mut first_feed = None;
    while line.state() == UnitState::Running && t < 7200.0 {
        line.step(1.0);
        t += 1.0;
        if first_feed.is_none() && line.readings().feeding {
            first_feed = Some(t);
            assert!(line.readings().o2_pct < 2.5 + 0.05);
        }
    }
    assert_eq!(line.state(), UnitState::Complete);
    let purge = first_feed.unwrap_or(f64::NAN);
    assert!((300.0..=600.0).contains(&purge), "purge took {purge} s");
    assert!((2000.0..=2700.0).contains(&t), "batch took {t} s");
    let o = line.readings().outputs;
    assert!(
        (o.total_kg() - 2000.0).abs() < 2000.0 * 0.005,
        "the output scales show {} kg",
        o.total_kg()
    );
    let processed = line.readings().processed_kg;
    assert!(
        (processed - 2000.0).abs() < 2000.0 * 0.02,
        "the belt weigher counted {processed} kg"
    );
    assert_eq!(line.command(6), Ok(()));
    while line.state() != UnitState::Idle && t < 9000.0 {
        line.step(1.0);
        t += 1.0;
    }
    let end = line
        .take_batch_end()
        .expect("a cleared batch hands over its outputs");
    check_conserved("shredder", &pack.material(), &end.outputs);
    assert_eq!(end.unprocessed.total(), 0.0);
}

#[test]
fn a_shredder_batch_waits_for_its_material() {
    let mut line = ShredderLine::new(Noise::new(5, 2));
    assert_eq!(
        line.set_charge(Charge {
            mass_kg: 500.0,
            chemistry_code: 4
        }),
        Ok(())
    );
    assert_eq!(line.command(1), Ok(()));
    for _ in 0..1200 {
        line.step(1.0);
    }
    assert!(!line.readings().feeding, "nothing to feed without material");
    assert_eq!(line.readings().processed_kg, 0.0);
    assert_eq!(line.state(), UnitState::Running);
}

fn charge(mass_kg: f64) -> LeachCharge {
    LeachCharge {
        mass_kg,
        ni: 0.273,
        co: 0.034,
        li: 0.040,
        mn: 0.032,
        cu: 0.01,
        al: 0.01,
    }
}

#[test]
fn plant_recoveries_land_in_the_claimed_ranges_for_any_batch() {
    let mut n = Noise::new(11, 3);
    for _ in 0..500 {
        let d = BatchDraws::draw(&mut n);
        let (ni, co, li) = d.overall(0.99);
        assert!((0.85..=0.97).contains(&ni), "Ni {ni}");
        assert!((0.85..=0.97).contains(&co), "Co {co}");
        assert!((0.78..=0.94).contains(&li), "Li {li}");
    }
}

#[test]
fn the_hydromet_train_runs_a_batch_within_ninety_simulated_minutes() {
    let mut t = HydrometTrain::new(Noise::new(1, 4));
    assert_eq!(t.set_charge(charge(1000.0)), Ok(()));
    assert_eq!(t.command(HydroUnit::Leach, 1), Ok(true));
    let mut s = 0.0;
    while t.state(HydroUnit::LiCarbonate) != UnitState::Complete && s < 3.0 * 3600.0 {
        t.step(1.0);
        s += 1.0;
    }
    assert!(s <= 90.0 * 60.0, "train took {} min", s / 60.0);
    for u in HydroUnit::ALL {
        assert_eq!(t.state(u), UnitState::Complete, "{}", u.name());
    }
    let r = t.readings();
    let ni = r.ni_product_kg * r.ni_fraction / (1000.0 * 0.273);
    assert!((0.85..=0.99).contains(&ni), "Ni recovery {ni}");
    assert!(
        (0.993..=1.0).contains(&r.li2co3_purity),
        "{}",
        r.li2co3_purity
    );
}

#[test]
fn the_train_s_outputs_hold_every_element_of_its_charge() {
    let mut t = HydrometTrain::new(Noise::new(1, 4));
    assert_eq!(t.set_charge(charge(1000.0)), Ok(()));
    assert_eq!(t.command(HydroUnit::Leach, 1), Ok(true));
    let request = t
        .take_feed_request()
        .expect("Start asks for the black mass");
    assert_eq!(request.charge.mass_kg, 1000.0);
    let mut feed = Material::of(
        &[
            (Element::Ni, 250.0),
            (Element::Co, 40.0),
            (Element::Li, 41.0),
            (Element::Mn, 30.0),
            (Element::Cu, 12.0),
            (Element::Al, 9.0),
            (Element::Fe, 3.0),
            (Element::Graphite, 350.0),
        ],
        0.0,
    );
    feed = feed.plus(&Material::of(&[], 1000.0 - feed.total()));
    t.supply(feed);
    let mut s = 0.0;
    while t.state(HydroUnit::LiCarbonate) != UnitState::Complete && s < 3.0 * 3600.0 {
        t.step(1.0);
        s += 1.0;
        // Mid-batch too, every element is somewhere.
        check_conserved(
            "train",
            &feed.map(|e, kg| if e.is_some() { kg } else { 0.0 }),
            &t.true_outputs()
                .map(|m| m.map(|e, kg| if e.is_some() { kg } else { 0.0 })),
        );
    }
    assert_eq!(t.command(HydroUnit::Leach, 6), Ok(true));
    while t.state(HydroUnit::Leach) != UnitState::Idle && s < 4.0 * 3600.0 {
        t.step(1.0);
        s += 1.0;
    }
    let end = t
        .take_batch_end()
        .expect("a cleared batch hands over its outputs");
    let tracked = |m: &Material| m.map(|e, kg| if e.is_some() { kg } else { 0.0 });
    check_conserved("train", &tracked(&feed), &end.outputs.map(|m| tracked(&m)));
    let ni = end.outputs[0].element(Element::Ni) / 250.0;
    assert!((0.85..=0.99).contains(&ni), "Ni recovery {ni}");
    assert_eq!(
        end.outputs[3].element(Element::Graphite),
        350.0,
        "graphite stays in the residue"
    );
    let measured = end.measured_kg[0];
    let truth = end.outputs[0].total();
    assert!(
        (measured - truth).abs() < truth * 0.01,
        "scale {measured} vs {truth}"
    );
}

#[test]
fn reset_on_leach_returns_the_whole_train_to_idle_and_clears_the_batch() {
    let mut t = HydrometTrain::new(Noise::new(1, 4));
    assert_eq!(t.set_charge(charge(500.0)), Ok(()));
    assert_eq!(t.command(HydroUnit::Leach, 1), Ok(true));
    assert_eq!(t.command(HydroUnit::Leach, 5), Ok(true));
    for _ in 0..10 {
        t.step(1.0);
    }
    assert_eq!(t.state(HydroUnit::Leach), UnitState::Aborted);
    assert_eq!(t.command(HydroUnit::FeAlRemoval, 6), Ok(false));
    assert_eq!(t.command(HydroUnit::Leach, 6), Ok(true));
    for _ in 0..10 {
        t.step(1.0);
    }
    for u in HydroUnit::ALL {
        assert_eq!(t.state(u), UnitState::Idle, "{}", u.name());
    }
    assert_eq!(t.charge().mass_kg, 0.0);
}

#[test]
fn start_is_only_for_leach_and_needs_a_valid_charge() {
    let mut t = HydrometTrain::new(Noise::new(1, 4));
    assert_eq!(t.command(HydroUnit::Leach, 1), Ok(false));
    assert_eq!(t.control(HydroUnit::Leach).rejected(), 1);
    let mut bad = charge(100.0);
    bad.ni = 0.9;
    assert_eq!(t.set_charge(bad), Ok(()));
    assert_eq!(t.command(HydroUnit::Leach, 1), Ok(false));
    assert_eq!(t.set_charge(charge(100.0)), Ok(()));
    assert_eq!(t.command(HydroUnit::CoSx, 1), Ok(false));
    assert_eq!(t.command(HydroUnit::Leach, 1), Ok(true));
}
