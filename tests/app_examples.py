"""Synthetic example records for the app tests and the screenshots: clearly labelled as such.

The shipped seed has studies and claims but no quantitative effects yet, so the pages
that pool, plot and map need some. Every source here is titled "(synthetic example)".
"""

from __future__ import annotations

import random

SITES = [("boreal", "forest", 61.8, 24.3, "Finland"), ("boreal", "peatland", 64.2, 19.6, "Sweden"),
         ("arctic", "tundra", 68.6, -149.6, "USA"), ("temperate", "forest", 42.5, -72.2, "USA"),
         ("temperate", "grassland", 47.4, 8.5, "Switzerland"), ("alpine", "grassland", 37.6, 101.3, "China"),
         ("tropical", "forest", 18.3, -65.8, "Puerto Rico"), ("temperate", "cropland", 52.1, 5.2, "Netherlands"),
         ("boreal", "forest", 55.9, -98.5, "Canada"), ("mediterranean", "shrubland", 41.3, 2.0, "Spain")]


def example_records(n: int = 10, seed: int = 7) -> dict[str, list[dict]]:
    """``n`` synthetic studies with one SOC-stock lnRR each (two with an assumed variance)."""
    rng = random.Random(seed)
    records = {"sources": [], "studies": [], "effects": []}
    for i in range(n):
        biome, ecosystem, lat, lon, country = SITES[i % len(SITES)]
        key = f"example{2010 + i}"
        records["sources"].append({"key": key, "title": f"Warming experiment {i + 1} (synthetic example)",
                                   "authors": "Example, Ann and Sample, Ben and Test, Cy",
                                   "year": 2010 + i, "journal": "Synthetic Examples", "verification": "none"})
        records["studies"].append({
            "id": f"{key}-a", "source_key": key, "study_type": "field_experiment", "biome": biome,
            "ecosystem": ecosystem, "lat": lat, "lon": lon, "country": country,
            "depth_top_cm": 0, "depth_bottom_cm": 30 if i % 3 else 100, "warming_method": "open_top_chamber",
            "warming_c": 1.0 + (i % 4), "duration_years": 3 + i, "soc_direction": "decrease",
            "mechanisms": ["microbial_decomposition"] + (["mineral_protection"] if i % 2 else []),
            "summary": f"Synthetic example study {i + 1} for tests and screenshots."})
        mean_c = rng.uniform(3000, 9000)
        effect = {"study_id": f"{key}-a", "response": "soc_stock", "measure": "ROM",
                  "mean_t": round(mean_c * rng.uniform(0.8, 1.05), 1), "sd_t": round(mean_c * 0.12, 1),
                  "n_t": rng.randint(3, 8), "mean_c": round(mean_c, 1), "sd_c": round(mean_c * 0.1, 1),
                  "n_c": rng.randint(3, 8), "units": "g C m-2", "source_location": "synthetic"}
        if i in (1, 4):
            effect["variance_note"] = "SD assumed to be 10 % of the mean (not reported)"
        records["effects"].append(effect)
    return records
