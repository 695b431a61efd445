//! Battery-passport importers: Battery Pass 1.2.0, Catena-X battery_pass 6.1.0, IDTA, GB/T 34014 intake, into domain passports.
