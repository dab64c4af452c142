import evonas
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

x, y = load_digits(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x / 16, y, test_size=0.3, random_state=0)


def objective(genome, settings):
    p = settings["params"]
    net = MLPClassifier((p["hidden"],), alpha=p["alpha"], solver=p["solver"],
                        momentum=p.get("momentum", 0.9), max_iter=60, random_state=settings["seed"])
    return net.fit(x_train, y_train).score(x_val, y_val)


summary = evonas.search({
    "name": "mlp", "seed": 0,
    "search": {"encoding": "choice", "params": {
        "solver": ["adam", "sgd"], "momentum": {"uniform": [0.5, 0.99], "when": {"solver": "sgd"}},
        "hidden": {"log_int": [8, 128]}, "alpha": {"log_uniform": [1e-5, 1e-1]}}},
    "strategy": {"name": "aging", "population": 8, "sample": 3, "cycles": 22},
    "evaluation": {"objective": "accuracy"}, "pool": {"workers": 2}},
    objective=objective, resume=True)
print(summary.best_values, summary.best_genome)
