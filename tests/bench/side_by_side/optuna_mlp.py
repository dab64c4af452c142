import optuna
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

x, y = load_digits(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x / 16, y, test_size=0.3, random_state=0)


def objective(trial):
    solver = trial.suggest_categorical("solver", ["adam", "sgd"])
    momentum = trial.suggest_float("momentum", 0.5, 0.99) if solver == "sgd" else 0.9
    net = MLPClassifier((trial.suggest_int("hidden", 8, 128, log=True),),
                        alpha=trial.suggest_float("alpha", 1e-5, 1e-1, log=True),
                        solver=solver, momentum=momentum, max_iter=60, random_state=trial.number)
    return net.fit(x_train, y_train).score(x_val, y_val)


storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("mlp.log"))
study = optuna.create_study(study_name="mlp", storage=storage, direction="maximize",
                            sampler=optuna.samplers.TPESampler(seed=0), load_if_exists=True)
study.optimize(objective, n_trials=30, n_jobs=2)
print(study.best_value, study.best_params)
