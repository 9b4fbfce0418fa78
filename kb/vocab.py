"""Controlled vocabularies: the one place that says which values a field may take.

Each vocabulary becomes a table in the store (name, label, description, synonyms and any
extra columns), so SQLite itself refuses an unknown value through a foreign key; the
Python layer refuses it first with the allowed values and the nearest match.

Synonyms let importers map free text (SRDB ``Biome``/``Ecosystem_type``, the review's
"alpine shrubland", "croplands") onto a term: matching ignores case, surrounding space,
hyphens, underscores and a trailing plural "s".
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache


@dataclass(frozen=True)
class Term:
    name: str
    label: str
    description: str
    synonyms: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


def _terms(*rows) -> tuple[Term, ...]:
    return tuple(Term(*row[:3], tuple(row[3]) if len(row) > 3 else (), *row[4:]) for row in rows)


BIOMES = _terms(
    ("arctic", "Arctic", "Arctic and tundra climate zone", ["tundra", "polar", "high arctic", "low arctic"]),
    ("boreal", "Boreal", "Boreal (taiga) and subarctic climate zone", ["taiga", "subarctic", "sub-arctic", "boreal forest zone"]),
    ("high_latitude", "High latitude", "Arctic and boreal zones taken together", ["high latitude", "high-latitude", "northern high latitudes", "cold regions", "permafrost region"]),
    ("temperate", "Temperate", "Temperate climate zone", ["continental", "continental monsoon", "cool temperate", "warm temperate", "mid-latitude"]),
    ("subtropical", "Subtropical", "Subtropical climate zone", ["sub-tropical", "subtropics"]),
    ("tropical", "Tropical", "Tropical climate zone", ["tropics", "humid tropical", "wet tropical"]),
    ("mediterranean", "Mediterranean", "Mediterranean-type climate", ["mediterranean climate"]),
    ("alpine", "Alpine", "Alpine and montane zone above the tree line", ["montane", "high elevation", "high altitude", "tibetan plateau"]),
    ("arid", "Arid and semi-arid", "Arid and semi-arid (dryland) climate", ["semiarid", "semi-arid", "dryland", "drylands", "desert climate", "arid"]),
    ("global", "Global", "Global or multi-continental scope", ["worldwide", "world", "across biomes", "global scale"]),
    ("multiple", "Multiple", "Several named biomes, not global", ["several biomes", "mixed"]),
    ("not_reported", "Not reported", "The source does not say", ["terrestrial", "unknown", "na", "n/a"]),
)

ECOSYSTEMS = _terms(
    ("forest", "Forest", "Forests and woodlands, natural or planted", ["woodland", "plantation", "temperate forest", "boreal forest", "tropical forest", "forest soil"]),
    ("grassland", "Grassland", "Grasslands, steppes, meadows and prairies", ["steppe", "meadow", "prairie", "rangeland", "alpine meadow", "pasture grassland"]),
    ("pasture", "Pasture and grazing land", "Managed grazing systems", ["grazing system", "grazing land", "grazed grassland", "pastureland"]),
    ("shrubland", "Shrubland", "Shrublands and heaths", ["heath", "heathland", "scrub", "alpine shrubland", "chaparral"]),
    ("cropland", "Cropland", "Arable and perennial crops", ["agriculture", "agricultural", "cropping system", "arable", "farmland", "orchard", "agricultural land", "crop"]),
    ("wetland", "Wetland", "Mineral wetlands, marshes and swamps", ["marsh", "swamp", "waterlogged depression", "floodplain", "mangrove"]),
    ("peatland", "Peatland", "Bogs, fens and other peat-forming systems", ["peat", "bog", "fen", "mire", "organic soils"]),
    ("tundra", "Tundra", "Tundra vegetation", ["arctic tundra", "alpine tundra"]),
    ("permafrost", "Permafrost soils", "Soils with permafrost, whatever the vegetation", ["permafrost soils", "permafrost soil", "permafrost region", "permafrost regions", "thawing permafrost"]),
    ("desert", "Desert", "Deserts and barren drylands", ["barren", "dryland soil"]),
    ("savanna", "Savanna", "Savannas", ["savannah", "woodland savanna"]),
    ("urban", "Urban", "Urban soils, lawns and parks", ["lawn", "city"]),
    ("bare_soil", "Bare soil", "Unvegetated soil plots", ["bare", "fallow soil", "bare fallow"]),
    ("multiple", "Multiple", "Several ecosystem types", ["mixed", "mixed land use", "several ecosystems", "multiple ecosystems", "land uses"]),
    ("other", "Other", "Another ecosystem the vocabulary does not name", ["salt pan"]),
    ("not_reported", "Not reported", "The source does not say", ["unknown", "na", "n/a"]),
)

MECHANISMS = _terms(
    ("microbial_decomposition", "Microbial decomposition", "Warming stimulates microbial decomposition and heterotrophic respiration", ["decomposition", "heterotrophic respiration", "soil respiration", "microbial respiration", "respiration stimulation"]),
    ("temperature_sensitivity", "Temperature sensitivity", "Temperature sensitivity of decomposition (Q10, activation energy, energetic barriers)", ["q10", "activation energy", "energetic barrier", "energetic barriers", "thermal sensitivity"]),
    ("carbon_use_efficiency", "Microbial carbon use efficiency", "Fraction of assimilated carbon allocated to microbial biomass rather than respired", ["cue", "microbial cue", "carbon use efficiency", "microbial carbon use efficiency", "growth efficiency"]),
    ("microbial_community", "Microbial community", "Biomass, diversity and composition of decomposer communities", ["soil biodiversity", "microbial biomass", "community composition", "soil community", "soil fauna"]),
    ("thermal_acclimation", "Thermal acclimation", "Acclimation or adaptation of respiration to sustained warming", ["acclimation", "adaptation of respiration"]),
    ("substrate_limitation", "Substrate limitation", "Substrate depletion and maintenance costs limiting microbes", ["substrate depletion", "maintenance costs", "substrate availability"]),
    ("priming", "Priming", "Fresh inputs change the decomposition of existing SOC", ["priming effect", "rhizosphere priming"]),
    ("mineral_protection", "Mineral protection", "Organo-mineral associations (MAOC) protect carbon", ["maoc", "mineral-associated organic carbon", "mineral association", "organo-mineral associations", "mineral-associated carbon", "mineral protection"]),
    ("aggregation", "Aggregation", "Physical protection of carbon inside aggregates and pores", ["aggregate protection", "physical protection", "aggregates"]),
    ("carbon_saturation", "Carbon saturation", "Finite capacity of soils (minerals) to store more carbon", ["saturation", "saturation limits", "storage capacity", "maoc capacity"]),
    ("plant_inputs", "Plant carbon inputs", "Plant productivity, litter and root inputs to soil", ["productivity", "plant productivity", "root inputs", "rooting", "litter inputs", "npp", "root dynamics"]),
    ("turnover_time", "Turnover and transit time", "Residence, turnover and transit times of soil carbon", ["turnover", "transit time", "residence time", "soil carbon turnover", "turnover times"]),
    ("permafrost_thaw", "Permafrost thaw", "Thaw exposes frozen organic matter to decomposition", ["thaw", "permafrost degradation", "thawing permafrost"]),
    ("soil_moisture", "Soil moisture and hydrology", "Moisture limitation, drying, wetting and hydrological change", ["moisture", "hydrology", "drought stress", "water availability", "evapotranspiration"]),
    ("nutrient_limitation", "Nutrient availability", "Nitrogen or phosphorus limitation and fertilization", ["nitrogen limitation", "phosphorus limitation", "co-limitation", "nutrients", "nutrient cycling", "fertilization"]),
    ("leaching", "Leaching", "Loss of dissolved organic carbon by leaching", ["doc leaching", "dissolved organic carbon"]),
    ("erosion", "Erosion and redistribution", "Erosion, lateral transport and burial of SOC", ["water erosion", "redistribution", "deposition", "burial"]),
    ("disturbance", "Disturbance", "Fire, drought, extreme events and other disturbances", ["fire", "drought", "extreme events", "wildfire"]),
    ("land_management", "Land management", "Tillage, residues, rotations, grazing and other management", ["management", "tillage", "residue retention", "crop rotation", "improved management"]),
    ("permanence", "Permanence and reversal", "Persistence, reversibility and permanence of stored SOC", ["reversal", "persistence", "reversibility", "dynamic stability"]),
)

DIRECTIONS = _terms(
    ("increase", "Increase", "The quantity increased", ["increased", "gain", "gains", "higher", "positive", "up"]),
    ("decrease", "Decrease", "The quantity decreased", ["decreased", "loss", "losses", "lower", "negative", "down", "depletion"]),
    ("no_change", "No change", "No detectable change", ["none", "no effect", "unchanged", "stable", "no significant change", "neutral"]),
    ("mixed", "Mixed", "Increases and decreases across sites, pools or times", ["variable", "context dependent", "context-dependent", "both"]),
    ("not_reported", "Not reported", "The source does not give a direction", ["unknown", "na", "n/a"]),
)

STUDY_TYPES = _terms(
    ("field_experiment", "Field experiment", "Manipulative experiment in the field", ["warming experiment", "field warming", "manipulation experiment"], {"evidence_kind": "experimental"}),
    ("laboratory_experiment", "Laboratory experiment", "Incubation or other laboratory experiment", ["incubation", "laboratory incubation", "lab incubation", "mesocosm"], {"evidence_kind": "experimental"}),
    ("observational", "Observational study", "Field observation, gradient or monitoring study", ["observation", "gradient study", "chronosequence", "monitoring", "survey"], {"evidence_kind": "observational"}),
    ("data_synthesis", "Data-driven synthesis", "Global or regional analysis of observations (upscaling, trend analysis)", ["observation-based analysis", "global analysis", "data synthesis", "upscaling"], {"evidence_kind": "observational"}),
    ("database", "Database", "A compiled database of measurements", ["data compilation", "dataset", "compilation"], {"evidence_kind": "observational"}),
    ("meta_analysis", "Meta-analysis", "Quantitative synthesis of published studies", ["meta analysis", "metaanalysis", "quantitative synthesis"], {"evidence_kind": "synthesis"}),
    ("review", "Review", "Narrative or systematic review of field, laboratory and model evidence", ["narrative review", "synthesis review", "systematic review"], {"evidence_kind": "synthesis"}),
    ("model", "Model study", "Process-based or statistical model projection or analysis", ["modelling", "modeling", "model simulation", "process model", "earth system model", "esm"], {"evidence_kind": "model"}),
    ("model_intercomparison", "Model intercomparison", "Comparison of several models (e.g. CMIP ensembles)", ["cmip", "model comparison", "ensemble analysis"], {"evidence_kind": "model"}),
    ("emergent_constraint", "Emergent constraint", "Observations used to constrain a model ensemble", ["emergent-constraint", "observational constraint"], {"evidence_kind": "model"}),
    ("perspective", "Perspective", "Conceptual analysis, perspective or commentary", ["commentary", "conceptual", "opinion", "framework paper"], {"evidence_kind": "expert"}),
    ("policy_analysis", "Policy analysis", "Analysis of policy, governance, markets or MRV", ["policy", "governance analysis", "policy review", "mrv framework"], {"evidence_kind": "expert"}),
)

WARMING_METHODS = _terms(
    ("open_top_chamber", "Open-top chamber", "Passive warming with open-top chambers", ["otc", "open top chamber", "open-top chambers"]),
    ("infrared_heater", "Infrared heater", "Active warming with infrared lamps or heaters", ["infrared", "infrared lamp", "infrared lamps", "ir heater", "infrared heating"]),
    ("heating_cable", "Heating cable", "Buried resistance cables warming the topsoil", ["buried heating cables", "buried cables", "soil heating cables", "heating cables", "cable"]),
    ("whole_soil_heating", "Whole-soil heating", "Deep heating rods warming the whole profile", ["whole-soil warming", "whole soil warming", "whole-profile warming", "deep heating", "heating rods"]),
    ("greenhouse", "Greenhouse or closed chamber", "Passive warming in greenhouses or closed chambers", ["closed chamber", "passive greenhouse", "plastic greenhouse"]),
    ("climate_chamber", "Controlled-environment chamber", "Sunlit or growth chambers with controlled temperature", ["sunlit chamber", "growth chamber", "terracosm", "controlled environment"]),
    ("passive_night_warming", "Passive night-time warming", "Reflective curtains retaining heat at night", ["night warming", "reflective curtains"]),
    ("snow_manipulation", "Snow manipulation", "Snow fences or snow addition warming soils in winter", ["snow fence", "snow fences"]),
    ("heated_air", "Heated air or FACE-style warming", "Blown warm air or free-air temperature increase", ["free-air temperature increase", "heated air", "t-face"]),
    ("transplant", "Transplant", "Soil or ecosystem transplanted to a warmer site", ["reciprocal transplant", "elevation transplant"]),
    ("natural_gradient", "Natural gradient", "Space-for-time substitution along a natural temperature gradient", ["space for time", "temperature gradient", "geothermal gradient", "elevation gradient"]),
    ("laboratory_incubation", "Laboratory incubation", "Temperature manipulation in incubations", ["incubation", "lab incubation"]),
    ("other", "Other", "Another method the vocabulary does not name", []),
    ("not_reported", "Not reported", "The source does not say how it warmed", ["unknown", "unspecified"]),
)

RESPONSES = _terms(
    ("soc_stock", "SOC stock", "Soil organic carbon stock", ["soil carbon stock", "soc", "soil organic carbon"], {"default_units": "g C m-2"}),
    ("soc_concentration", "SOC concentration", "Soil organic carbon concentration", ["soil carbon content", "%c", "carbon concentration"], {"default_units": "g C kg-1"}),
    ("maoc", "Mineral-associated OC", "Mineral-associated (heavy fraction) organic carbon", ["mineral-associated organic carbon", "heavy fraction"], {"default_units": "g C kg-1"}),
    ("poc", "Particulate OC", "Particulate (light fraction) organic carbon", ["particulate organic carbon", "light fraction", "fpom"], {"default_units": "g C kg-1"}),
    ("soil_respiration", "Soil respiration (annual)", "Annual soil CO2 efflux", ["rs", "rs_annual", "annual soil respiration", "soil co2 efflux"], {"default_units": "g C m-2 yr-1"}),
    ("soil_respiration_rate", "Soil respiration rate", "Mean soil CO2 efflux rate over a stated period", ["rs_growingseason", "soil co2 flux", "growing-season respiration", "flux rate"], {"default_units": "umol CO2 m-2 s-1"}),
    ("heterotrophic_respiration", "Heterotrophic respiration", "Annual heterotrophic (microbial) soil respiration", ["rh", "rh_annual", "microbial respiration"], {"default_units": "g C m-2 yr-1"}),
    ("autotrophic_respiration", "Autotrophic respiration", "Annual root (autotrophic) respiration", ["ra", "ra_annual", "root respiration"], {"default_units": "g C m-2 yr-1"}),
    ("root_contribution", "Root contribution to soil respiration", "Fraction of annual soil respiration from roots (autotrophic), SRDB RC_annual", ["rc", "rc_annual", "root contribution"], {"default_units": "fraction"}),
    ("q10", "Q10 of soil respiration", "Temperature sensitivity of soil respiration: the factor by which it rises per 10 °C, from a fitted temperature-response model", ["q10 of soil respiration", "temperature sensitivity of soil respiration"], {"default_units": "dimensionless"}),
    ("r10", "Soil respiration at 10 °C", "Soil respiration rate at 10 °C from a fitted temperature-response model (basal rate)", ["r10", "basal respiration", "reference respiration"], {"default_units": "umol CO2 m-2 s-1"}),
    ("microbial_biomass", "Microbial biomass carbon", "Microbial biomass carbon", ["mbc", "microbial biomass carbon"], {"default_units": "mg C kg-1"}),
    ("microbial_cue", "Microbial CUE", "Microbial carbon use efficiency", ["cue", "carbon use efficiency"], {"default_units": "fraction"}),
    ("root_biomass", "Root biomass", "Root biomass or fine-root production", ["fine roots", "root production"], {"default_units": "g m-2"}),
    ("npp", "Net primary production", "Net primary production", ["net primary productivity", "anpp", "productivity"], {"default_units": "g C m-2 yr-1"}),
    ("doc", "Dissolved organic carbon", "Dissolved organic carbon", ["dissolved organic carbon"], {"default_units": "mg C L-1"}),
    ("ch4_flux", "Methane flux", "Soil methane flux", ["methane", "ch4"], {"default_units": "mg C m-2 d-1"}),
)

DEPTH_CLASSES = _terms(
    ("organic_layer", "Organic layer", "Litter and organic horizons above the mineral soil", ["litter layer", "o horizon", "forest floor"], {"top_cm": None, "bottom_cm": 0.0}),
    ("topsoil", "Topsoil", "Layers within the top 30 cm", ["surface soil", "surface", "near-surface", "topsoil"], {"top_cm": 0.0, "bottom_cm": 30.0}),
    ("subsoil", "Subsoil", "Layers between 30 and 100 cm", ["deep soil", "subsoils", "deep horizons"], {"top_cm": 30.0, "bottom_cm": 100.0}),
    ("deep_subsoil", "Deep subsoil", "Layers below 100 cm", ["below 1 m", "deep subsoil"], {"top_cm": 100.0, "bottom_cm": None}),
    ("whole_profile", "Whole profile", "A range spanning topsoil and subsoil", ["whole soil", "whole-soil", "whole-profile", "full profile", "profile"], {"top_cm": 0.0, "bottom_cm": None}),
    ("not_reported", "Not reported", "The source does not give a depth", ["unknown", "na", "n/a"], {"top_cm": None, "bottom_cm": None}),
)

LINK_RELATIONS = _terms(
    ("supports", "Supports", "The evidence supports the claim", ["support", "agrees", "consistent with"]),
    ("contradicts", "Contradicts", "The evidence contradicts the claim", ["contradict", "conflicts", "disagrees", "refutes"]),
    ("qualifies", "Qualifies", "The evidence limits or conditions the claim", ["qualify", "nuances", "conditions", "limits"]),
    ("refines", "Refines", "A claim that narrows or extends another claim", ["refine", "extends", "specialises"]),
)

TREATMENTS = _terms(
    ("control", "Control", "Un-manipulated control", [r"^none$", r"^control$", r"^ck\b", r"^conrol$", r"(?<!weed )(?<!vegetation )\bcontrol\b(?!.*\b(warm|heat))", r"ambient temperature"]),
    ("warming", "Warming", "Experimental warming", [r"\bwarm(ed|ing)?\b", r"\bheated\b", r"elevated temperature", r"increased temperature", r"\(eco2et\)|\(aco2et\)"]),
    ("heat_wave", "Heat wave", "A short heat-wave event, not sustained warming", [r"heat ?wave", r"hot drought"]),
    ("co2", "Elevated CO2", "Elevated atmospheric CO2", [r"\bco2\b", r"\bface\b", r"\[co2\]"]),
    ("nitrogen", "Nitrogen or fertilizer addition", "Nitrogen, phosphorus or other fertilizer", [r"fertili[sz]", r"\bn addition\b", r"\bn\b", r"\bnpk\b", r"\burea\b", r"nitrogen", r"manure", r"\bp addition\b", r"nh4no3", r"compost", r"sludge"]),
    ("irrigation", "Irrigation or water addition", "Irrigation, wetting or added rain", [r"irrigat", r"\bwetted\b", r"water addition", r"precipitation add", r"artificial rainfall", r"increased (precipitation|percipitation)", r"enhanced rainfall", r"\bflood\b"]),
    ("drought", "Drought or rain exclusion", "Drought, throughfall reduction or rain exclusion", [r"drought", r"throughfall (reduction|exclusion)", r"precipitation remove", r"reduced rainfall", r"decreased (precipitation|percipitation)", r"\bdried\b"]),
    ("precipitation_change", "Precipitation change", "Change in precipitation amount or timing", [r"(precipitation|percipitation) (amount|timing|pattern) change", r"increased precipitation"]),
    ("litter_manipulation", "Litter manipulation", "Litter removal, addition or doubling", [r"litter", r"littler"]),
    ("clipping", "Clipping or mowing", "Clipping, mowing or defoliation", [r"\bclip(ped)?\b", r"mow", r"defoliation"]),
    ("grazing", "Grazing", "Grazing or herbivore exclusion", [r"graz", r"herbivore", r"fenced", r"enclos"]),
    ("fire", "Burning", "Prescribed burning or fire", [r"burn", r"\bfire\b"]),
    ("harvest", "Harvest or thinning", "Thinning, clearcut, harvest, logging", [r"thin", r"clearcut", r"harvest", r"logging", r"coppic", r"girdl", r"gap"]),
    ("tillage", "Tillage", "Tillage, no-till and soil disturbance", [r"till", r"plough", r"plow", r"rotovat", r"harrow", r"soil disturbance", r"direct drilling"]),
    ("drainage", "Drainage", "Drainage or rewetting of wet soils", [r"drain", r"re-dammed"]),
    ("acidification", "Acidification or liming", "Acid addition or liming", [r"acid", r"lim(e|ing)\b"]),
    ("biochar", "Biochar", "Biochar amendment", [r"biochar"]),
    ("trenching", "Trenching or root exclusion", "Trenching and root exclusion", [r"trench", r"root(s)? exclu", r"no-root"]),
    ("snow", "Snow manipulation", "Snow fence, addition or removal", [r"snow"]),
    ("shading", "Shading", "Shading or light reduction", [r"shad(ing|ed)"]),
    ("ozone", "Ozone or UV", "Ozone or ultraviolet exposure", [r"\bo3\b", r"\buvb?\b", r"ultraviolet", r"filtered air"]),
    ("cropping", "Crop management", "Rotations, cover crops, residues, mulching", [r"rotation", r"cover crop", r"intercrop", r"mulch", r"stubble", r"straw", r"residue", r"monoculture", r"fallow", r"planting"]),
    ("other", "Other manipulation", "A manipulation the vocabulary does not name", []),
)

VOCABULARIES: dict[str, tuple[Term, ...]] = {
    "biomes": BIOMES,
    "ecosystems": ECOSYSTEMS,
    "mechanisms": MECHANISMS,
    "directions": DIRECTIONS,
    "study_types": STUDY_TYPES,
    "warming_methods": WARMING_METHODS,
    "responses": RESPONSES,
    "depth_classes": DEPTH_CLASSES,
    "link_relations": LINK_RELATIONS,
    "treatments": TREATMENTS,
}

#: Which vocabulary each record field draws on.
FIELD_VOCABULARY: dict[tuple[str, str], str] = {
    ("studies", "study_type"): "study_types",
    ("studies", "biome"): "biomes",
    ("studies", "ecosystem"): "ecosystems",
    ("studies", "depth_class"): "depth_classes",
    ("studies", "warming_method"): "warming_methods",
    ("studies", "soc_direction"): "directions",
    ("studies", "respiration_direction"): "directions",
    ("studies", "mechanisms"): "mechanisms",
    ("effects", "response"): "responses",
    ("effects", "direction"): "directions",
    ("claims", "scope_biome"): "biomes",
    ("claims", "scope_ecosystem"): "ecosystems",
    ("claims", "scope_mechanism"): "mechanisms",
    ("claims", "scope_depth_class"): "depth_classes",
    ("claim_links", "relation"): "link_relations",
}

#: Which vocabulary lists the values of each facet (a study filter, a synthesis grouping or
#: an evidence-map axis): the one map behind filters, groupings and their pickers.
FACET_VOCABULARY: dict[str, str] = {
    "biome": "biomes",
    "ecosystem": "ecosystems",
    "mechanism": "mechanisms",
    "depth_class": "depth_classes",
    "study_type": "study_types",
    "direction": "directions",
    "soc_direction": "directions",
    "respiration_direction": "directions",
    "response": "responses",
}

WARMING_MEDIA = ("air", "soil", "air_and_soil")


def names(vocabulary: str) -> list[str]:
    """The allowed values of a vocabulary, in their curated order."""
    return [t.name for t in VOCABULARIES[vocabulary]]


def _fold(text: str) -> str:
    text = re.sub(r"[\s_\-]+", " ", str(text).strip().lower())
    return text


@cache
def _synonym_index(vocabulary: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for term in VOCABULARIES[vocabulary]:
        for word in (term.name, term.label, *term.synonyms):
            index.setdefault(_fold(word), term.name)
    return index


def lookup(vocabulary: str, text: str | None) -> str | None:
    """Map free text to a term name through names, labels and synonyms; None if no match.

    >>> lookup("biomes", "Temperate ")
    'temperate'
    >>> lookup("ecosystems", "Croplands")
    'cropland'
    """
    if text is None:
        return None
    key = _fold(text)
    index = _synonym_index(vocabulary)
    if key in index:
        return index[key]
    if key.endswith("s") and key[:-1] in index:
        return index[key[:-1]]
    return None


def nearest(vocabulary: str, value: str) -> str | None:
    """The allowed value closest in spelling to ``value``, for "did you mean" hints."""
    folded = _fold(value)
    via_synonym = lookup(vocabulary, value)
    if via_synonym:
        return via_synonym
    index = _synonym_index(vocabulary)
    match = difflib.get_close_matches(folded, list(index), n=1, cutoff=0.6)
    return index[match[0]] if match else None


@cache
def _treatment_patterns() -> tuple[tuple[str, re.Pattern], ...]:
    return tuple(
        (term.name, re.compile("|".join(term.synonyms), re.IGNORECASE))
        for term in TREATMENTS
        if term.synonyms
    )


def treatment_factors(manipulation: str | None) -> frozenset[str]:
    """The treatment factors named in a free-text manipulation label (SRDB ``Manipulation``).

    Each term's synonyms are regular expressions. ``"Heat Wave"`` is a heat wave, not
    warming; a label that matches nothing is ``{"other"}``; an empty label is
    ``{"control"}`` only when it is literally ``None`` or a control label.

    >>> sorted(treatment_factors("Warmed, clipped"))
    ['clipping', 'warming']
    >>> sorted(treatment_factors("Heat Wave"))
    ['heat_wave']
    """
    text = (manipulation or "").strip()
    if not text:
        return frozenset({"other"})
    found = {name for name, pattern in _treatment_patterns() if pattern.search(text)}
    if "heat_wave" in found:
        found.discard("warming")
    if len(found) > 1:
        found.discard("control")
    return frozenset(found or {"other"})
